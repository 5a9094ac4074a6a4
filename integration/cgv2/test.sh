#!/usr/bin/env bash
# test.sh - runs berth's cgroup tests (tests/cgroups.rs) on a pure cgroup v2 host: a throw-away VM from
# run-in-vm.sh, with this repository shared in at the same path.
#
# usage: integration/cgv2/test.sh [TEST-FILTER...]
#
# Builds the static berth and the static test binary on the host (cargo test --release --no-run), boots the VM
# and runs the test binary there, as root in the VM's root cgroup (the tests' relative cgroups land under it with
# every controller enabled). The tests read every limit back from the v2 files (io.max and io.weight on the VM's
# disk too, rdma.max on a Soft-RoCE device the rdma test makes), and show pids.max, the memory limit, the eBPF
# device program and cgroup.freeze acting on real processes.
#
# Exit status: the tests'. When QEMU cannot run at all on this machine (no qemu-system-x86_64 and no way to
# install it), it says so and exits 0: then the v2 code is untested here, which the message makes clear.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd -P)
cd "$here"
vm=integration/cgv2/run-in-vm.sh

if ! command -v qemu-system-x86_64 >/dev/null && ! command -v apt-get >/dev/null; then
  echo "test-cgv2: SKIPPED: qemu-system-x86_64 is missing and apt-get cannot install it here;" \
       "the cgroup v2 tests did not run" >&2
  exit 0
fi

cargo build --release
bin=$(cargo test --release --no-run --test cgroups 2>&1 | tee /dev/stderr |
      sed -n 's/.*Executable tests\/cgroups.rs (\(.*\))$/\1/p' | tail -1)
[ -n "$bin" ] && [ -x "$bin" ] || { echo "test-cgv2: cannot find the cgroups test binary" >&2; exit 1; }
# ldd exits 1 on a plain static executable ("not a dynamic executable"): read its words, not its status.
linkage=$(ldd "$bin" 2>&1 || true)
grep -q 'not a dynamic executable\|statically linked' <<<"$linkage" ||
  { echo "test-cgv2: $bin is not static ($linkage): it cannot run in the VM" >&2; exit 1; }

# Two tests at a time, as `make test` runs them on the host.
set +e
"$vm" --mem 1024 --timeout 900 "$here" -- "$bin" --test-threads=2 "$@"
rc=$?
set -e
case $rc in
  0) echo "test-cgv2: the cgroup tests passed on cgroup v2" ;;
  124) echo "test-cgv2: the VM timed out" >&2 ;;
  125) echo "test-cgv2: the VM failed (see the console tail above)" >&2 ;;
  *) echo "test-cgv2: the cgroup tests failed on cgroup v2 (exit $rc)" >&2 ;;
esac
exit $rc
