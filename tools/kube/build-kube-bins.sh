#!/bin/bash
# Build genuine kube-apiserver + kube-scheduler v1.20.2 for scaler's tests, once per machine.
#
# Source: Debian bookworm's own "kubernetes" source package (the full upstream v1.20.2 tree
# with vendor/), built with Debian's golang-go; only the Debian archive is contacted.
# Cold build: ~5 min on 2 cores. Cached in ${KUBE_BINS:-$HOME/.cache/kube-bins/v1.20.2-reflect2};
# a second run prints "cached in ..." at once. etcd comes from Debian's etcd-server and is
# installed even when the binaries are cached (a cache can outlive a package set).
set -euo pipefail
# The cache name says what was patched: a build without the reflect2 fix (below) must never
# be picked up again.
KUBE_BINS=${KUBE_BINS:-$HOME/.cache/kube-bins/v1.20.2-reflect2}
DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1

SUDO=""
[[ $(id -u) == 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  if [[ $apt_updated == 0 ]]; then $SUDO apt-get update -qq; apt_updated=1; fi
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v etcd >/dev/null || apt_install etcd-server

if [[ -x $KUBE_BINS/kube-apiserver && -x $KUBE_BINS/kube-scheduler ]]; then
  echo "cached in $KUBE_BINS"
  exit 0
fi

# Two builds into one cache would race on the final copy: serialise them.
mkdir -p "$(dirname "$KUBE_BINS")"
exec 9>"$KUBE_BINS.lock"
flock 9
if [[ -x $KUBE_BINS/kube-apiserver && -x $KUBE_BINS/kube-scheduler ]]; then
  echo "cached in $KUBE_BINS (built by a concurrent run)"
  exit 0
fi

# apt-get source needs deb-src entries: mirror the machine's own Debian entries.
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      | $SUDO tee /etc/apt/sources.list.d/scaler-kube-deb-src.sources >/dev/null
  else
    sed -n -e 's/^deb /deb-src /p' /etc/apt/sources.list \
      | $SUDO tee /etc/apt/sources.list.d/scaler-kube-deb-src.list >/dev/null
  fi
  apt_updated=0
fi
apt_install golang-go etcd-server rsync jq make golang-github-modern-go-reflect2-dev

W=$(mktemp -d -t scaler-kube-build.XXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
apt-get source --download-only -qq "kubernetes=$DEB_VERSION"
tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
cd kubernetes-1.20.2
# No .git in a source package: pin the version the binaries report.
cat > "$W/version.env" <<'V'
KUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='v1.20.2'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='20'
V
# Kubernetes 1.20 vendors github.com/modern-go/reflect2 v1.0.1, which is broken under
# Go >= 1.18: built with Debian's Go 1.19 the apiserver segfaults on the first patch a
# mutating admission webhook returns. v1.0.2 (Debian's golang-github-modern-go-reflect2-dev)
# is the upstream fix; vendor it in its place.
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
[[ -f $REFLECT2/reflect2.go ]] || { echo "missing $REFLECT2" >&2; exit 1; }
rm -rf vendor/github.com/modern-go/reflect2
mkdir -p vendor/github.com/modern-go/reflect2
cp "$REFLECT2"/*.go "$REFLECT2"/*.s vendor/github.com/modern-go/reflect2/ 2>/dev/null \
  || cp "$REFLECT2"/*.go vendor/github.com/modern-go/reflect2/
rm -f vendor/github.com/modern-go/reflect2/*_test.go
sed -i 's|github.com/modern-go/reflect2 v1.0.1|github.com/modern-go/reflect2 v1.0.2|' go.mod vendor/modules.txt
find . -name go.sum -path ./vendor -prune -o -name go.sum -print0 \
  | xargs -0 sed -i '/github.com\/modern-go\/reflect2 v1.0.1/d'
echo "building kube-apiserver + kube-scheduler (about 5 minutes on 2 cores)..."
env HOME="$W/home" KUBE_GIT_VERSION_FILE="$W/version.env" GOPROXY=off GOFLAGS= \
  make WHAT="cmd/kube-apiserver cmd/kube-scheduler" >"$W/make.log" 2>&1 \
  || { tail -30 "$W/make.log"; exit 1; }
# Copy under temporary names and rename, so a reader never sees a half-written binary.
mkdir -p "$KUBE_BINS"
for b in kube-apiserver kube-scheduler; do
  cp "_output/bin/$b" "$KUBE_BINS/.$b.tmp"
  mv "$KUBE_BINS/.$b.tmp" "$KUBE_BINS/$b"
done
"$KUBE_BINS/kube-apiserver" --version
echo "cached in $KUBE_BINS"
