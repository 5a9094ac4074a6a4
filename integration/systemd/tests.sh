#!/bin/bash
# tests.sh - berth's systemd cgroup driver against a real systemd (PID 1). Runs INSIDE the VM of run-in-vm.sh
# (test.sh boots it); refuses to run elsewhere. Every check prints PASS or FAIL; exit status 1 if any failed.
#
#   BERTH=/abs/path/to/static/berth integration/systemd/tests.sh
set -uo pipefail
[ "${BERTH_SYSTEMD_VM:-}" = 1 ] && [ "$(cat /proc/1/comm)" = systemd ] ||
  { echo "tests.sh: runs only inside integration/systemd/run-in-vm.sh's VM (systemd as PID 1)" >&2; exit 2; }
BERTH=${BERTH:?set BERTH to the berth binary}
root=/run/berth-sd
work=$(mktemp -d /tmp/berth-sd.XXXXXX)
b() { "$BERTH" --root "$root" "$@"; }
bs() { "$BERTH" --root "$root" --systemd-cgroup "$@"; }
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION GOT WANT
  if [ "$2" = "$3" ]; then pass "$1 = $3"; else fail "$1: got [$2], want [$3]"; fi
}
contains() { # contains DESCRIPTION TEXT NEEDLE
  if grep -qF -- "$3" <<<"$2"; then pass "$1 has [$3]"; else fail "$1: [$2] lacks [$3]"; fi
}
prop() { systemctl show -P "$2" "$1" 2>/dev/null; }
if [ -d /sys/fs/cgroup/unified ] || [ -d /sys/fs/cgroup/memory ]; then mode=hybrid; else mode=v2; fi
echo "== cgroup mode: $mode; $(systemctl --version | head -1)"
cg() { # cg CONTROLLER RELPATH: the directory of RELPATH for CONTROLLER
  if [ $mode = v2 ]; then echo "/sys/fs/cgroup$2"; else echo "/sys/fs/cgroup/$1$2"; fi
}

cleanup() {
  for id in $(b list -q 2>/dev/null); do b delete -f "$id" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT

# bundle ID CGROUPSPATH [JQ-FILTER]: a busybox bundle running `sleep 1000`
bundle() {
  local d=$work/$1
  mkdir -p "$d/rootfs/bin"
  cp /bin/busybox "$d/rootfs/bin/"
  for a in sh sleep cat; do ln -sf busybox "$d/rootfs/bin/$a"; done
  (cd "$d" && "$BERTH" spec)
  jq --arg p "$2" '.process.terminal = false | .process.args = ["sleep", "1000"] | .linux.cgroupsPath = $p'"${3:+ | $3}" \
    "$d/config.json" > "$d/c.json" && mv "$d/c.json" "$d/config.json"
  echo "$d"
}
no_state() { # no_state ID: berth has no container ID
  if b state "$1" >/dev/null 2>&1; then fail "container $1 was left behind"; else pass "no state left for $1"; fi
}
gone() { # gone UNIT CGROUP-DIR
  check "LoadState of $1" "$(prop "$1" LoadState)" not-found
  if [ -e "$2" ]; then fail "$2 still exists"; else pass "$2 is gone"; fi
}

echo "== a scope with limits: systemctl show and the cgroup files"
res='.linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 32}, "cpu": {"quota": 50000, "period": 100000, "shares": 512}}'
d=$(bundle t1 system.slice:berth:t1 "$res")
if bs create --bundle "$d" t1 && b start t1; then
  pass "create + start with --systemd-cgroup"
  u=berth-t1.scope
  check "ActiveState" "$(prop $u ActiveState)" active
  check "Slice" "$(prop $u Slice)" system.slice
  check "Delegate" "$(prop $u Delegate)" yes
  check "TasksMax" "$(prop $u TasksMax)" 32
  check "CPUQuotaPerSecUSec" "$(prop $u CPUQuotaPerSecUSec)" 500ms
  check "DevicePolicy" "$(prop $u DevicePolicy)" strict
  contains "DeviceAllow" "$(prop $u DeviceAllow)" "/dev/char/1:3 rwm"
  contains "DeviceAllow" "$(prop $u DeviceAllow)" "char-pts rwm"
  echo "   systemctl show $u:"; systemctl show $u -p Id -p Slice -p Delegate -p MemoryMax -p MemoryLimit \
    -p TasksMax -p CPUQuotaPerSecUSec -p CPUWeight -p CPUShares -p ControlGroup -p DevicePolicy -p DeviceAllow | sed 's/^/     /'
  check "ControlGroup" "$(prop $u ControlGroup)" /system.slice/berth-t1.scope
  pid=$(b state t1 | jq .pid)
  contains "/proc/$pid/cgroup of the init" "$(cat /proc/$pid/cgroup)" /system.slice/berth-t1.scope
  if [ $mode = v2 ]; then
    dir=/sys/fs/cgroup/system.slice/berth-t1.scope
    check "MemoryMax" "$(prop $u MemoryMax)" 67108864
    check "memory.max" "$(cat $dir/memory.max)" 67108864
    check "pids.max" "$(cat $dir/pids.max)" 32
    check "cpu.max" "$(cat $dir/cpu.max)" "50000 100000"
    echo "   $dir: memory.max=$(cat $dir/memory.max) pids.max=$(cat $dir/pids.max) cpu.max=$(cat $dir/cpu.max)"
  else
    check "MemoryLimit" "$(prop $u MemoryLimit)" 67108864
    check "CPUShares" "$(prop $u CPUShares)" 512
    check "memory.limit_in_bytes" "$(cat "$(cg memory /system.slice/$u)"/memory.limit_in_bytes)" 67108864
    check "pids.max" "$(cat "$(cg pids /system.slice/$u)"/pids.max)" 32
    check "cpu.cfs_quota_us" "$(cat "$(cg cpu,cpuacct /system.slice/$u)"/cpu.cfs_quota_us)" 50000
    check "cpu.shares" "$(cat "$(cg cpu,cpuacct /system.slice/$u)"/cpu.shares)" 512
    contains "unified (hybrid) membership" "$(cat /proc/$pid/cgroup)" "0::/system.slice/berth-t1.scope"
  fi

  echo "== exec joins the scope"
  b exec t1 sleep 600 &
  ep=
  for _ in $(seq 100); do
    ep=$(b ps t1 2>/dev/null | awk 'NR > 1 && $2 != "'"$pid"'" {print $2}' | head -1)
    [ -n "$ep" ] && break; sleep 0.1
  done
  if [ -n "$ep" ]; then contains "/proc/$ep/cgroup of the exec'd process" "$(cat /proc/$ep/cgroup)" /system.slice/berth-t1.scope
  else fail "exec: no second process in berth ps"; fi
  check "berth ps count" "$(b ps t1 | tail -n +2 | wc -l)" 2

  echo "== update: SetUnitProperties and the files"
  if b update --memory 128M --pids-limit 64 t1; then
    pass "update"
    check "TasksMax after update" "$(prop $u TasksMax)" 64
    if [ $mode = v2 ]; then
      check "MemoryMax after update" "$(prop $u MemoryMax)" 134217728
      check "memory.max after update" "$(cat /sys/fs/cgroup/system.slice/$u/memory.max)" 134217728
      check "pids.max after update" "$(cat /sys/fs/cgroup/system.slice/$u/pids.max)" 64
    else
      check "MemoryLimit after update" "$(prop $u MemoryLimit)" 134217728
      check "memory.limit_in_bytes after update" "$(cat "$(cg memory /system.slice/$u)"/memory.limit_in_bytes)" 134217728
    fi
    # systemd re-applies its properties on daemon-reload: they must still be berth's
    systemctl daemon-reload
    if [ $mode = v2 ]; then check "memory.max after daemon-reload" "$(cat /sys/fs/cgroup/system.slice/$u/memory.max)" 134217728; fi
    check "pids.max after daemon-reload" "$(cat "$(cg pids /system.slice/$u)"/pids.max)" 64
  else fail "update"; fi

  echo "== pause / resume"
  b pause t1 && check "status after pause" "$(b state t1 | jq -r .status)" paused
  if [ $mode = v2 ]; then check "cgroup.freeze" "$(cat /sys/fs/cgroup/system.slice/$u/cgroup.freeze)" 1
  else check "freezer.state" "$(cat "$(cg freezer /system.slice/$u)"/freezer.state)" FROZEN; fi
  b resume t1 && check "status after resume" "$(b state t1 | jq -r .status)" running

  echo "== events --stats reads the scope"
  check "events --stats: pids.current" "$(b events --stats t1 | jq .data.pids.current)" 2

  echo "== delete stops the unit"
  b kill t1 KILL; sleep 0.3
  if b delete t1; then pass "delete"; else fail "delete"; fi
  gone $u "$(cg memory /system.slice/$u)"
  [ $mode = hybrid ] && { gone $u "$(cg pids /system.slice/$u)"; gone $u "$(cg freezer /system.slice/$u)"; }
  no_state t1
else
  fail "create + start t1"
fi

echo "== kubelet-style nested slice that does not exist yet"
slice=kubepods-burstable-pod1234.slice
d=$(bundle t2 "$slice:cri-containerd:t2" "$res")
if bs run -d --bundle "$d" t2; then
  u=cri-containerd-t2.scope
  check "Slice" "$(prop $u Slice)" $slice
  check "ControlGroup" "$(prop $u ControlGroup)" "/kubepods.slice/kubepods-burstable.slice/$slice/$u"
  check "parent slice state" "$(prop kubepods-burstable.slice ActiveState)" active
  dir=$(cg pids /kubepods.slice/kubepods-burstable.slice/$slice/$u)
  check "pids.max in the nested scope" "$(cat $dir/pids.max)" 32
  b delete -f t2 && pass "delete -f"
  gone $u "$dir"
else fail "run -d in $slice"; fi

echo "== a slice unit of its own (name ending in .slice)"
d=$(bundle t2b "kubepods.slice::kubepods-besteffort.slice" "$res")
if bs run -d --bundle "$d" t2b; then
  pid=$(b state t2b | jq .pid)
  contains "/proc/$pid/cgroup" "$(cat /proc/$pid/cgroup)" /kubepods.slice/kubepods-besteffort.slice
  b delete -f t2b && pass "delete -f of a slice container"
  no_state t2b
else fail "run -d as kubepods-besteffort.slice"; fi

echo "== org.systemd.property.* annotations (runc's): extra unit properties, given after berth's own"
ann=".annotations = {\"org.systemd.property.TimeoutStopSec\": \"123\", \"org.systemd.property.CollectMode\": \"'inactive-or-failed'\", \"org.systemd.property.Description\": \"'set by an annotation'\"}"
d=$(bundle t8 system.slice:berth:t8 "$ann")
if bs run -d --bundle "$d" t8; then
  check "TimeoutStopSec=123 (as TimeoutStopUSec)" "$(prop berth-t8.scope TimeoutStopUSec)" "2min 3s"
  check "CollectMode" "$(prop berth-t8.scope CollectMode)" inactive-or-failed
  check "Description (the annotation wins over berth's)" "$(prop berth-t8.scope Description)" "set by an annotation"
  b delete -f t8 && pass "delete -f t8"
  gone berth-t8.scope "$(cg pids /system.slice/berth-t8.scope)"
else fail "run -d with org.systemd.property annotations"; fi
d=$(bundle t9 system.slice:berth:t9 '.annotations = {"org.systemd.property.TimeoutStopUSec": "uint64 soon"}')
out=$(bs run -d --bundle "$d" t9 2>&1); rc=$?
check "malformed annotation exit" $rc 1
contains "malformed annotation error" "$out" "annotation org.systemd.property.TimeoutStopUSec=uint64 soon value parse error"
no_state t9
gone berth-t9.scope "$(cg pids /system.slice/berth-t9.scope)"

echo "== errors"
d=$(bundle t3 /berth/t3)
out=$(bs run -d --bundle "$d" t3 2>&1); rc=$?
check "bad cgroupsPath exit" $rc 1
contains "bad cgroupsPath error" "$out" 'slice:prefix:name'
no_state t3

d=$(bundle dup1 system.slice:berth:dup)
bs run -d --bundle "$d" dup1 || fail "run dup1"
d=$(bundle dup2 system.slice:berth:dup)
out=$(bs run -d --bundle "$d" dup2 2>&1); rc=$?
check "unit already exists exit" $rc 1
contains "unit already exists error" "$out" "berth-dup.scope: it already exists"
no_state dup2
check "first container untouched" "$(b state dup1 | jq -r .status)" running
check "its unit untouched" "$(prop berth-dup.scope ActiveState)" active
b delete -f dup1; gone berth-dup.scope "$(cg pids /system.slice/berth-dup.scope)"

systemctl mask --runtime masked.slice >/dev/null 2>&1
d=$(bundle t5 masked.slice:berth:t5)
out=$(bs run -d --bundle "$d" t5 2>&1); rc=$?
check "masked slice exit" $rc 1
contains "masked slice error (systemd's reason)" "$out" "masked"
no_state t5
gone berth-t5.scope "$(cg pids /masked.slice/berth-t5.scope)"
systemctl unmask --runtime masked.slice >/dev/null 2>&1

echo "== the bus is down: systemd's private socket"
d=$(bundle t6 system.slice:berth:t6)
out=$(unshare -m sh -c 'mount -t tmpfs none /run/dbus && "$0" --root '"$root"' --systemd-cgroup run -d --bundle "$1" t6 &&
                        systemctl show -P ActiveState berth-t6.scope && "$0" --root '"$root"' delete -f t6' "$BERTH" "$d" 2>&1)
rc=$?
echo "   $out"
check "private socket run + delete exit" $rc 0
contains "scope started over the private socket" "$out" active
gone berth-t6.scope "$(cg pids /system.slice/berth-t6.scope)"

echo "== systemd unreachable"
d=$(bundle t7 system.slice:berth:t7)
out=$(unshare -m sh -c 'mount -t tmpfs none /run/dbus && mount -t tmpfs none /run/systemd &&
                        "$0" --root '"$root"' --systemd-cgroup run -d --bundle "$1" t7' "$BERTH" "$d" 2>&1)
rc=$?
echo "   $out"
check "unreachable exit" $rc 1
contains "unreachable error" "$out" "/run/dbus/system_bus_socket"
contains "unreachable error" "$out" "/run/systemd/private"
no_state t7
gone berth-t7.scope "$(cg pids /system.slice/berth-t7.scope)"

if [ $mode = v2 ]; then
  echo "== rootless --systemd-cgroup: a user's own manager (integration/systemd/rootless.sh)"
  BERTH="$BERTH" "$(dirname "$0")/rootless.sh" 2>&1 | sed 's/^/   /'
  [ "${PIPESTATUS[0]}" = 0 ] && pass "rootless --systemd-cgroup" || fail "rootless --systemd-cgroup"
fi

if [ -n "${BERTH_SD_IMAGE:-}" ]; then
  echo "== containerd: ctr run --runc-systemd-cgroup --runc-binary berth"
  "$(dirname "$0")/containerd-in-vm.sh" || fail "containerd with --runc-systemd-cgroup"
fi

if [ -n "${BERTH_SD_IMAGE:-}" ]; then
  echo "== podman --cgroup-manager systemd --runtime berth"
  "$(dirname "$0")/podman-in-vm.sh" || fail "podman with --cgroup-manager systemd"
fi

if [ -n "${BERTH_SD_CRI:-}" ]; then
  echo "== CRI: containerd's CRI plugin with the berth handler and SystemdCgroup = true (integration/cri.sh)"
  if CRI_SYSTEMD=1 CRI_CLIENT="$BERTH_SD_CRI/berth-cri-test" CRI_IMAGES="$BERTH_SD_CRI" BERTH="$BERTH" \
       "$(dirname "$0")/../cri.sh" 2>&1 | sed 's/^/   /'; then
    pass "CRI scenarios with SystemdCgroup = true"
  else fail "CRI scenarios with SystemdCgroup = true"; fi
fi

echo "== leftovers"
left=$(systemctl list-units --all --no-legend --plain 'berth-*.scope' 'cri-containerd-*' 'ctr-*' 'libpod-*')
check "units left" "$left" ""
if [ $failures -gt 0 ]; then echo "tests.sh: $failures check(s) FAILED ($mode)"; exit 1; fi
echo "tests.sh: all checks passed ($mode)"
