#!/bin/bash
# rootless.sh - rootless --systemd-cgroup (v2 only, as runc): a throw-away non-root user's own systemd manager
# makes the scope, below the manager's ControlGroup. Runs INSIDE run-in-vm.sh's VM (tests.sh runs it on v2; alone:
#   integration/systemd/run-in-vm.sh DIR -- env BERTH=/abs/berth integration/systemd/rootless.sh).
# Every check prints PASS or FAIL; exit status 1 if any failed.
set -uo pipefail
[ "${BERTH_SYSTEMD_VM:-}" = 1 ] && [ "$(cat /proc/1/comm)" = systemd ] ||
  { echo "rootless.sh: runs only inside integration/systemd/run-in-vm.sh's VM" >&2; exit 2; }
BERTH=${BERTH:?set BERTH to the berth binary}
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { if [ "$2" = "$3" ]; then pass "$1 = $3"; else fail "$1: got [$2], want [$3]"; fi; }
if [ -d /sys/fs/cgroup/unified ] || [ -d /sys/fs/cgroup/memory ]; then
  echo "rootless.sh: SKIPPED: not a cgroup v2 boot (runc has rootless systemd cgroups on v2 only)"; exit 0
fi

user=berthrl
useradd -m -s /bin/sh "$user" || { echo "FAIL: useradd"; exit 1; }
uid=$(id -u "$user")
xdg=/run/user/$uid
work=$(mktemp -d /tmp/berth-rl.XXXXXX)
cleanup() {
  as "$BERTH" delete -f r1 >/dev/null 2>&1
  systemctl stop "user@$uid.service" >/dev/null 2>&1
  rm -rf "/run/systemd/system/user@$uid.service.d"; systemctl daemon-reload
  rm -rf "$work"; userdel -r "$user" >/dev/null 2>&1
}
trap cleanup EXIT
# as CMD...: run CMD as the user, in its session's environment (no logind here: no session bus either, so berth
# and systemctl --user reach the manager over its private socket)
as() { runuser -u "$user" -- env -i PATH="$PATH" HOME="/home/$user" USER="$user" XDG_RUNTIME_DIR="$xdg" "$@"; }

# the user's manager without logind (masked in this image) and without pam_systemd (which would set
# XDG_RUNTIME_DIR): its runtime dir, the variable in a runtime drop-in, then user@UID.service
mkdir -p "$xdg" && chown "$user:" "$xdg" && chmod 700 "$xdg"
mkdir -p "/run/systemd/system/user@$uid.service.d"
printf '[Service]\nEnvironment=XDG_RUNTIME_DIR=%s\n' "$xdg" > "/run/systemd/system/user@$uid.service.d/berth-test.conf"
systemctl daemon-reload
if ! systemctl start "user@$uid.service"; then
  fail "start user@$uid.service"; journalctl -b -u "user@$uid.service" --no-pager | tail -20; exit 1
fi
mcg=$(systemctl show -P ControlGroup "user@$uid.service")
echo "   user manager: $mcg (delegated: $(systemctl show -P Delegate "user@$uid.service"))"

d=$work/b; mkdir -p "$d/rootfs/bin"
cp /bin/busybox "$d/rootfs/bin/"; for a in sh sleep; do ln -sf busybox "$d/rootfs/bin/$a"; done
chown -R "$user:" "$work"
as sh -c 'cd "$1" && "$2" spec --rootless' sh "$d" "$BERTH"   # maps the user's own ids
jq '.root.readonly = false | .process.terminal = false | .process.args = ["sleep", "1000"] | .linux.cgroupsPath = "user.slice:berth:r1"' \
  "$d/config.json" > "$d/c.json" && mv "$d/c.json" "$d/config.json"
chown -R "$user:" "$work"

echo "== rootless run --systemd-cgroup: the scope is the user manager's"
# (the detached container keeps the stdio it gets: a file, not this script's pipe)
as "$BERTH" --systemd-cgroup run -d --bundle "$d" r1 </dev/null >"$work/run.out" 2>&1; rc=$?; out=$(cat "$work/run.out")
[ -n "$out" ] && echo "   $out"
check "rootless run -d exit" $rc 0
u=berth-r1.scope
check "ActiveState (systemctl --user)" "$(as systemctl --user show -P ActiveState $u)" active
check "ControlGroup (systemctl --user)" "$(as systemctl --user show -P ControlGroup $u)" "$mcg/user.slice/$u"
check "the system manager has no such unit" "$(systemctl show -P LoadState $u)" not-found
pid=$(as "$BERTH" state r1 | jq -r .pid)
check "the init's cgroup" "$(cat /proc/"$pid"/cgroup 2>&1)" "0::$mcg/user.slice/$u"
check "the scope's directory belongs to the user" "$(stat -c %u "/sys/fs/cgroup$mcg/user.slice/$u" 2>&1)" "$uid"

echo "== rootless delete: no unit, no cgroup left"
as "$BERTH" delete -f r1; check "delete -f exit" $? 0
check "LoadState after delete (systemctl --user)" "$(as systemctl --user show -P LoadState $u)" not-found
if [ -e "/sys/fs/cgroup$mcg/user.slice/$u" ]; then fail "the scope's cgroup is left"; else pass "the scope's cgroup is gone"; fi
if as "$BERTH" state r1 >/dev/null 2>&1; then fail "the container's state is left"; else pass "no state left"; fi

if [ $failures -gt 0 ]; then echo "rootless.sh: $failures check(s) FAILED"; exit 1; fi
echo "rootless.sh: all checks passed"
