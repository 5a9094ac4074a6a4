#!/usr/bin/env bash
# test.sh - berth's systemd cgroup driver (--systemd-cgroup) against a real systemd: boots run-in-vm.sh's VM
# (systemd as PID 1, Debian bookworm) once on cgroup v2 and once on a hybrid boot, with this repository shared in,
# and runs tests.sh there with the static berth built here.
#
# usage: integration/systemd/test.sh [v2|hybrid]...   (default: both)
#
# Exit status: 0 when every mode passed. When QEMU cannot run here and apt-get cannot install it, it says so
# loudly and exits 0 (then the systemd driver is untested here, which the message makes clear).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd -P)
cd "$here"
if ! command -v qemu-system-x86_64 >/dev/null && ! command -v apt-get >/dev/null; then
  echo "test-systemd: SKIPPED: qemu-system-x86_64 is missing and apt-get cannot install it here;" \
       "the systemd cgroup driver tests did not run" >&2
  exit 0
fi
make -s build
# the busybox image containerd-in-vm.sh imports (built here: the VM has no python3)
mkdir -p target/systemd-vm
integration/oci-image.sh target/systemd-vm/image.tar docker.io/library/berth-busybox:latest
# the CRI client (integration/cri, built here: the VM has no cargo) and its images, for cri.sh in the VM; the CRI
# run is in the v2 boot only (most Kubernetes nodes; it costs a few emulated minutes)
cri=target/systemd-vm/cri
mkdir -p "$cri"
CARGO_TARGET_DIR=$here/target/cri cargo build --release --locked --quiet \
  --manifest-path integration/cri/Cargo.toml --target x86_64-unknown-linux-gnu
cp target/cri/x86_64-unknown-linux-gnu/release/berth-cri-test "$cri/"
integration/oci-image.sh "$cri/pause.tar" localhost/berth-test/pause:1 '["sleep","2147483647"]'
integration/oci-image.sh "$cri/busybox.tar" localhost/berth-test/busybox:1
modes=("$@"); [ ${#modes[@]} -gt 0 ] || modes=(v2 hybrid)
rc=0
for m in "${modes[@]}"; do
  echo "== test-systemd: $m"
  set +e
  integration/systemd/run-in-vm.sh --cgroup "$m" --timeout 1200 "$here" -- \
    env BERTH="$here/target/release/berth" BERTH_SD_IMAGE="$here/target/systemd-vm/image.tar" \
    BERTH_SD_CRI="$([ "$m" = v2 ] && echo "$here/$cri")" \
    integration/systemd/tests.sh
  r=$?
  set -e
  case $r in
    0) echo "test-systemd: $m passed" ;;
    124) echo "test-systemd: $m: the VM timed out" >&2; rc=1 ;;
    125) echo "test-systemd: $m: the VM failed (see above)" >&2; rc=1 ;;
    *) echo "test-systemd: $m: FAILED (exit $r)" >&2; rc=1 ;;
  esac
done
exit $rc
