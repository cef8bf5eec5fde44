#!/bin/bash
# Stop what start-kube.sh started in DIR, by PID: the scheduler and apiserver first (an
# apiserver whose etcd is gone hangs in its shutdown), then etcd. TERM, then KILL after 10 s.
# A PID is signalled only while its command line still names DIR, so a PID the kernel has
# since handed to another process is left alone.
#
# usage: stop-kube.sh DIR
set -uo pipefail
D=${1:?usage: stop-kube.sh DIR}
D=$(cd "$D" 2>/dev/null && pwd) || exit 0

# -ww: without it ps cuts the command line at 80 columns when piped, before DIR appears.
ours() { [[ $1 != "$$" ]] && ps -ww -o args= -p "$1" 2>/dev/null | grep -qF -- "$D"; }
# A zombie has exited: it only waits for init to reap it (start-kube.sh's children are
# orphans), which on some machines takes seconds.
alive() { local stat; stat=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $stat != Z* ]]; }

stop() {
  local name f pid pids=()
  for name in "$@"; do
    f=$D/$name.pid
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    if ours "$pid" && kill -TERM "$pid" 2>/dev/null; then pids+=("$pid"); fi
    rm -f "$f"
  done
  for _ in $(seq 100); do
    local running=()
    for pid in "${pids[@]}"; do alive "$pid" && running+=("$pid"); done
    ((${#running[@]} == 0)) && return 0
    pids=("${running[@]}")
    sleep 0.1
  done
  echo "stop-kube.sh: killing ${pids[*]} after 10 s" >&2
  kill -KILL "${pids[@]}" 2>/dev/null
}

stop watchdog scheduler apiserver
stop etcd
exit 0
