#!/bin/bash
# Start a throw-away Kubernetes control plane for tests: etcd + kube-apiserver + kube-scheduler
# (v1.20.2, see build-kube-bins.sh), all on 127.0.0.1 only. No kubelet, no controller-manager:
# tests play the kubelet (see docs/testing.md).
#
# usage: start-kube.sh [DIR]       DIR (or $D) defaults to a new temporary directory
# env:   KUBE_BINS                 where build-kube-bins.sh cached the binaries
#        API_PORT ETCD_PORT ETCD_PEER_PORT SCHED_PORT
#                                  default: free ports picked now, so sessions never collide
#        TOKEN                     admin bearer token (default: random)
#        SCHEDULER=0               do not start kube-scheduler
#        KUBE_START_TIMEOUT        seconds to wait for /readyz (default 60)
#        KUBE_WATCH_PID            stop everything when this process exits (e.g. the pytest
#                                  process, so a killed session leaks no apiserver)
# Writes DIR/kubeconfig and DIR/kube.env (KEY=VALUE lines: KUBE_DIR KUBECONFIG KUBE_SERVER
# KUBE_TOKEN KUBE_CA_FILE); logs and *.pid files stay in DIR. Stop with stop-kube.sh DIR.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_BINS=${KUBE_BINS:-$HOME/.cache/kube-bins/v1.20.2-reflect2}
D=${1:-${D:-$(mktemp -d -t scaler-kube.XXXX)}}
TIMEOUT_S=${KUBE_START_TIMEOUT:-60}

for b in "$KUBE_BINS/kube-apiserver" "$KUBE_BINS/kube-scheduler"; do
  [[ -x $b ]] || { echo "missing $b: run tools/kube/build-kube-bins.sh" >&2; exit 2; }
done
command -v etcd >/dev/null || { echo "missing etcd: run tools/kube/build-kube-bins.sh" >&2; exit 2; }

# Ask the kernel for four distinct free ports (held open together, released at once).
read -r P1 P2 P3 P4 < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
API_PORT=${API_PORT:-$P1}
ETCD_PORT=${ETCD_PORT:-$P2}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-$P3}
SCHED_PORT=${SCHED_PORT:-$P4}
TOKEN=${TOKEN:-$(openssl rand -hex 16)}

mkdir -p "$D"
D=$(cd "$D" && pwd)
cd "$D"
ok=0
trap '[[ $ok == 1 ]] || "$HERE/stop-kube.sh" "$D" >&2' EXIT

(umask 077; echo "$TOKEN,admin,admin-uid,system:masters" > tokens.csv)
if [[ ! -f sa.key ]]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi
T0=$EPOCHREALTIME

# --unsafe-no-fsync: the data is thrown away after the session; fsync only costs time.
etcd --name scaler-test --data-dir "$D/etcd-data" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "scaler-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  </dev/null >etcd.log 2>&1 &
echo $! > etcd.pid

# ServiceAccount admission is off so pods need no token secrets (no controller-manager makes
# them); TaintNodesByCondition is off so new Nodes are not born tainted not-ready.
"$KUBE_BINS/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" --insecure-port=0 \
  --cert-dir="$D/certs" --token-auth-file="$D/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$D/sa.pub" --service-account-signing-key-file="$D/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --disable-admission-plugins=ServiceAccount,TaintNodesByCondition \
  --allow-privileged=true \
  </dev/null >apiserver.log 2>&1 &
echo $! > apiserver.pid

if [[ -n ${KUBE_WATCH_PID:-} ]]; then
  # Its command line carries $D so stop-kube.sh can tell it from a recycled PID.
  bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" "$3"' \
    scaler-kube-watchdog "$KUBE_WATCH_PID" "$HERE/stop-kube.sh" "$D" </dev/null >/dev/null 2>&1 &
  echo $! > watchdog.pid
fi

cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: scaler-test
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$D/certs/apiserver.crt"}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: scaler-test
  context: {cluster: scaler-test, user: admin}
current-context: scaler-test
KC
chmod 600 kubeconfig

alive() { kill -0 "$(cat "$1.pid")" 2>/dev/null || { echo "$1 exited:" >&2; tail -20 "$1.log" >&2; exit 1; }; }
deadline=$((SECONDS + TIMEOUT_S))
# Verified TLS against the CA the apiserver generated: the same check the clients make.
until curl -sf --cacert "$D/certs/apiserver.crt" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null | grep -qx ok; do
  alive etcd; alive apiserver
  ((SECONDS < deadline)) || { echo "apiserver not ready after ${TIMEOUT_S}s" >&2; tail -20 apiserver.log >&2; exit 1; }
  sleep 0.1
done
T_API=$EPOCHREALTIME

if [[ ${SCHEDULER:-1} == 1 ]]; then
  "$KUBE_BINS/kube-scheduler" --kubeconfig="$D/kubeconfig" \
    --authentication-kubeconfig="$D/kubeconfig" --authorization-kubeconfig="$D/kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --port=0 \
    </dev/null >scheduler.log 2>&1 &
  echo $! > scheduler.pid
  until curl -sfk "https://127.0.0.1:$SCHED_PORT/healthz" 2>/dev/null | grep -qx ok; do
    alive scheduler
    ((SECONDS < deadline)) || { echo "scheduler not healthy after ${TIMEOUT_S}s" >&2; tail -20 scheduler.log >&2; exit 1; }
    sleep 0.1
  done
fi

cat > kube.env <<ENV
KUBE_DIR=$D
KUBECONFIG=$D/kubeconfig
KUBE_SERVER=https://127.0.0.1:$API_PORT
KUBE_TOKEN=$TOKEN
KUBE_CA_FILE=$D/certs/apiserver.crt
ENV
chmod 600 kube.env
ok=1
echo "apiserver ready after $(awk "BEGIN{printf \"%.2f\", $T_API - $T0}")s, all ready after $(awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME - $T0}")s"
echo "D=$D KUBECONFIG=$D/kubeconfig SERVER=https://127.0.0.1:$API_PORT"
echo "PIDS: etcd=$(cat etcd.pid) apiserver=$(cat apiserver.pid) scheduler=$(cat scheduler.pid 2>/dev/null || echo -)"
