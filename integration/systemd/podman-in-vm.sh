#!/bin/bash
# podman-in-vm.sh - podman (4.3, conmon) with `--cgroup-manager systemd --runtime berth`, inside the systemd VM:
# podman asks berth for a scope (`--systemd-cgroup`, cgroupsPath machine.slice:libpod:<id>) and makes conmon's own.
# Called by tests.sh with BERTH and BERTH_SD_IMAGE (an OCI archive made on the host by integration/oci-image.sh).
# Prints PASS/FAIL lines; exit 1 on the first failure. Private --root/--runroot, vfs storage, no network.
set -uo pipefail
[ "${BERTH_SYSTEMD_VM:-}" = 1 ] || { echo "podman-in-vm.sh: runs only inside the systemd VM" >&2; exit 2; }
command -v podman >/dev/null || { echo "FAIL: podman is not in the VM image"; exit 1; }
work=$(mktemp -d /tmp/berth-podman.XXXXXX)
image=docker.io/library/berth-busybox:latest
name=berth-sd-podman
p() {
  timeout 120 podman --root "$work/root" --runroot "$work/runroot" --cgroup-manager systemd \
    --events-backend file --storage-driver vfs --runtime "$BERTH" "$@"
}
fail() { echo "FAIL: $*"; exit 1; }
prop() { systemctl show -P "$2" "$1" 2>/dev/null; }
cleanup() {
  p rm -f -t 0 "$name" >/dev/null 2>&1
  p rm -af -t 0 >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

p load -i "$BERTH_SD_IMAGE" >/dev/null 2>&1 || fail "podman load"
out=$(p run --rm --network none --cgroupns host "$image" cat /proc/self/cgroup 2>&1) || fail "podman run --rm: $out"
grep -q '/machine.slice/libpod-[0-9a-f]*\.scope' <<<"$out" || fail "podman run: not in a libpod scope: $out"
echo "PASS: podman --cgroup-manager systemd --runtime berth run: $(tr '\n' ' ' <<<"$out")"

id=$(p run -d --name "$name" --network none "$image" sleep 1000) || fail "podman run -d: $id"
u=libpod-$id.scope
[ "$(prop "$u" ActiveState)" = active ] || fail "$u is not active"
[ "$(prop "$u" Slice)" = machine.slice ] || fail "$u is in $(prop "$u" Slice), not machine.slice"
echo "PASS: $u active in machine.slice, Delegate=$(prop "$u" Delegate), ControlGroup=$(prop "$u" ControlGroup)"
pid=$(p inspect -f '{{.State.Pid}}' "$name")
grep -q "/machine.slice/$u" "/proc/$pid/cgroup" || fail "the container's init is not in $u: $(cat "/proc/$pid/cgroup")"
echo "PASS: the init (pid $pid) is in $u"
p rm -f -t 0 "$name" >/dev/null || fail "podman rm -f"
for _ in $(seq 50); do [ "$(prop "$u" LoadState)" = not-found ] && break; sleep 0.1; done
[ "$(prop "$u" LoadState)" = not-found ] || fail "$u left behind after podman rm ($(prop "$u" ActiveState))"
left=$(systemctl list-units --all --plain --no-legend "libpod-*$id*")
[ -z "$left" ] || fail "units left after podman rm: $left"
echo "PASS: podman rm left no scope (container's or conmon's)"
