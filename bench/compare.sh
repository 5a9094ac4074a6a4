#!/usr/bin/env bash
# usage: bench/compare.sh [-n RUNS] [-o REPORT]
#
# Runs berth, runc and crun side by side on the same busybox bundle and reports ratios (runtime / berth):
#   1. N sequential containers running /bin/true through the whole lifecycle (`run`: create, start, wait, delete);
#   2. the same split into create / start / delete invocations (what containerd and podman do);
#   3. the smallest memory.limit_in_bytes (v1) under which each runtime still starts a container.
# Every runtime is treated the same way: all run in one private mount namespace in which the cgroup2 mount
# (/sys/fs/cgroup/unified) is detached, because crun 1.8 refuses hybrid hosts. Nothing is timed by a test; this is a
# report. Needs root, busybox-static, runc and crun (installed with apt-get if missing).
set -euo pipefail
runs=100 report=
while getopts n:o: o; do
  case $o in n) runs=$OPTARG ;; o) report=$OPTARG ;; *) sed -n 2p "$0"; exit 2 ;; esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
berth=${BERTH:-$here/target/release/berth}
[ -x "$berth" ] || { echo "build berth first (make build)" >&2; exit 1; }
for p in runc crun busybox-static; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done

if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  # Re-enter in a private mount namespace where the unified hierarchy is not mounted.
  exec unshare -m --propagation private env BERTH_BENCH_INNER=1 "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
BERTH=$berth "$here/integration/make-bundle.sh" "$work/bundle" /bin/true >/dev/null
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"]["cgroupsPath"] = "berth-bench/c"
c["ociVersion"] = "1.0.2"  # crun 1.8 knows no later version
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY

declare -A bin=([berth]=$berth [runc]=$(command -v runc) [crun]=$(command -v crun))
names=(berth runc crun)

# One container through `run` (create, start, wait, delete); prints its wall time in us (EPOCHREALTIME: no fork).
one_run() {  # RUNTIME ID
  local rt=${bin[$1]} root=$work/root-$1 t0 t1
  t0=${EPOCHREALTIME/./}
  "$rt" --root "$root" run --bundle "$work/bundle" "$2" >/dev/null 2>&1 </dev/null || { echo "$1 run failed" >&2; return 1; }
  t1=${EPOCHREALTIME/./}
  echo $((t1 - t0))
}

# One container through separate create / start / state (until stopped) / delete invocations; prints us.
one_split() {  # RUNTIME ID
  local rt=${bin[$1]} root=$work/root-$1 t0 t1
  t0=${EPOCHREALTIME/./}
  "$rt" --root "$root" create --bundle "$work/bundle" "$2" >/dev/null 2>&1 </dev/null || { echo "$1 create failed" >&2; return 1; }
  "$rt" --root "$root" start "$2" >/dev/null 2>&1
  while [ "$("$rt" --root "$root" state "$2" 2>/dev/null | grep -o '"status": *"[a-z]*"' | grep -o '[a-z]*"$')" != 'stopped"' ]; do :; done
  "$rt" --root "$root" delete "$2" >/dev/null 2>&1
  t1=${EPOCHREALTIME/./}
  echo $((t1 - t0))
}

min_memory() {  # RUNTIME -> smallest limit in KiB (from a ladder) under which `run` of /bin/true succeeds
  local rt=${bin[$1]} root=$work/root-$1 kib
  for kib in 64 96 128 192 256 384 512 768 1024 1536 2048 3072 4096 6144 8192 16384; do
    python3 - "$work/bundle/config.json" "$kib" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"].setdefault("resources", {})["memory"] = {"limit": int(sys.argv[2]) * 1024, "swap": int(sys.argv[2]) * 1024}
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
    if timeout 20 "$rt" --root "$root" run --bundle "$work/bundle" "m$kib" >/dev/null 2>&1 </dev/null; then
      echo "$kib"; return
    fi
    "$rt" --root "$root" delete --force "m$kib" >/dev/null 2>&1 || true
  done
  echo "none"
}

# Round-robin: container i of every runtime runs back to back, in a rotating order, so that whatever else the
# machine does at some moment weighs on all runtimes alike.
declare -A t_run t_split mem
for n in "${names[@]}"; do
  "${bin[$n]}" --root "$work/root-$n" run --bundle "$work/bundle" warm >/dev/null 2>&1 </dev/null || true  # warm caches
  t_run[$n]=0 t_split[$n]=0
done
for ((i = 0; i < runs; i++)); do
  for ((k = 0; k < ${#names[@]}; k++)); do
    n=${names[$(((i + k) % ${#names[@]}))]}
    us=$(one_run "$n" "b$i") || exit 1
    t_run[$n]=$((t_run[$n] + us * 1000))
    us=$(one_split "$n" "s$i") || exit 1
    t_split[$n]=$((t_split[$n] + us * 1000))
  done
done
for n in "${names[@]}"; do mem[$n]=$(min_memory "$n"); done
for d in /sys/fs/cgroup/*/; do
  for base in "$d" "$d"process_api/*/; do rmdir "$base/berth-bench" 2>/dev/null || true; done
done
# own cgroup parents (relative paths)
for line in $(cut -d: -f3 /proc/self/cgroup | sort -u); do
  for d in /sys/fs/cgroup/*"$line"/berth-bench; do rmdir "$d" 2>/dev/null || true; done
done

out() {
  printf 'berth benchmark: %d sequential containers (/bin/true, busybox bundle), %s, kernel %s, %s cores\n' \
    "$runs" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(uname -r)" "$(nproc)"
  printf 'versions: %s | %s | %s\n' "$("$berth" --version | head -1)" "$(runc --version | head -1)" "$(crun --version | head -1)"
  printf '\n%-6s %14s %10s %14s %10s %12s\n' runtime "run total ms" "ms/ctr" "split total ms" "ms/ctr" "min memory"
  for n in "${names[@]}"; do
    printf '%-6s %14d %10.2f %14d %10.2f %12s\n' "$n" $((t_run[$n] / 1000000)) \
      "$(echo "${t_run[$n]} / $runs / 1000000" | bc -l)" $((t_split[$n] / 1000000)) \
      "$(echo "${t_split[$n]} / $runs / 1000000" | bc -l)" "${mem[$n]} KiB"
  done
  printf '\nratios (runtime / berth; above 1 means berth is faster):\n'
  for n in runc crun; do
    printf '  %-5s run %.2fx   split %.2fx\n' "$n" "$(echo "${t_run[$n]} / ${t_run[berth]}" | bc -l)" \
      "$(echo "${t_split[$n]} / ${t_split[berth]}" | bc -l)"
  done
}
if [ -n "$report" ]; then out | tee "$report"; else out; fi
