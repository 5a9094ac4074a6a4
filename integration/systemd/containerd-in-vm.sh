#!/bin/bash
# containerd-in-vm.sh - containerd's runc shim driving berth with SystemdCgroup (`ctr run --runc-systemd-cgroup
# --runc-binary berth`), inside the systemd VM. Called by tests.sh with BERTH and BERTH_SD_IMAGE (an OCI archive
# made on the host by integration/oci-image.sh). Prints PASS/FAIL lines; exit 1 on the first failure.
set -uo pipefail
[ "${BERTH_SYSTEMD_VM:-}" = 1 ] || { echo "containerd-in-vm.sh: runs only inside the systemd VM" >&2; exit 2; }
work=$(mktemp -d /tmp/berth-ctrd.XXXXXX)
sock=$work/containerd.sock
ns=berth-sd
image=docker.io/library/berth-busybox:latest
id=ctrsd
ctrd_pid=
# shellcheck source=integration/lib.sh
. "$(dirname "$0")/../lib.sh"
ctr() { timeout 60 /usr/bin/ctr --address "$sock" --namespace "$ns" "$@"; }
fail() { echo "FAIL: $*"; tail -n 20 "$work/containerd.log"; exit 1; }
cleanup() {
  ctr task kill -s SIGKILL $id >/dev/null 2>&1; sleep 0.3
  ctr task delete -f $id >/dev/null 2>&1; ctr container delete $id >/dev/null 2>&1
  [ -n "$ctrd_pid" ] && kill "$ctrd_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
containerd_config "$work" "$sock" > "$work/config.toml"
start_containerd "$work/config.toml" "$work/containerd.log" "$sock" || fail "containerd did not start"
ctr images import "$BERTH_SD_IMAGE" >/dev/null || fail "ctr images import"
out=$(ctr run --rm --runc-systemd-cgroup --runc-binary "$BERTH" --runc-root "$work/berth-root" \
        --cgroup "system.slice:ctr:$id" "$image" $id sh -c 'cat /proc/self/cgroup; echo done-in-ctr' 2>&1) ||
  fail "ctr run --runc-systemd-cgroup: $out"
grep -q done-in-ctr <<<"$out" || fail "no output: $out"
echo "PASS: ctr run --runc-systemd-cgroup with berth: $(tr '\n' ' ' <<<"$out")"
ctr run -d --runc-systemd-cgroup --runc-binary "$BERTH" --runc-root "$work/berth-root" \
  --cgroup "system.slice:ctr:$id" "$image" $id sleep 1000 >/dev/null || fail "ctr run -d"
for _ in $(seq 50); do [ "$(systemctl show -P ActiveState ctr-$id.scope)" = active ] && break; sleep 0.1; done
[ "$(systemctl show -P ActiveState ctr-$id.scope)" = active ] || fail "ctr-$id.scope is not active"
echo "PASS: ctr-$id.scope active, Delegate=$(systemctl show -P Delegate ctr-$id.scope)"
ctr task kill -s SIGKILL $id; sleep 0.5
ctr task delete $id >/dev/null || fail "ctr task delete"
ctr container delete $id || fail "ctr container delete"
[ "$(systemctl show -P LoadState ctr-$id.scope)" = not-found ] || fail "ctr-$id.scope left behind"
echo "PASS: ctr task delete left no scope"
