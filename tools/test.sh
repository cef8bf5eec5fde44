#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   pip install -e ".[test]" && bash tools/test.sh
# Installs the real parts the tests start (one-time: Kubernetes test binaries built from
# Debian's source package and cached per machine; Chromium for the HTML report check;
# Prometheus and promtool for the metrics and alert-rule tests),
# then lint, types, the import contract, and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if ((${#need_apt[@]})) && [[ $(id -u) == 0 ]]; then
  echo "== installing ${need_apt[*]} (Debian)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null) \
    || echo "warning: could not install ${need_apt[*]}; the tests that need it will skip"
fi
echo "== kube test binaries"
bash tools/kube/build-kube-bins.sh

echo "== ruff"
ruff check .
echo "== mypy (scaler + simulations, strict)"
mypy
echo "== import contracts"
lint-imports
echo "== pytest"
python -m pytest "$@"
