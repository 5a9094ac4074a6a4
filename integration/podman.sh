#!/bin/bash
# podman (4.3, conmon) driving berth: private --root/--runroot, the cgroupfs manager with conmon left out of the
# cgroups and a relative --cgroup-parent, a busybox image built here and loaded, `--runtime berth`.
#
#   BERTH=/abs/path/to/berth integration/podman.sh
#
# podman does not pass --runtime-flag root=... when it cleans up an exited container, so berth keeps its state in
# its default root (/run/berth) here, as in real use; the test removes exactly the containers it made.
set -euo pipefail

BERTH=${BERTH:-$PWD/target/release/berth}
BERTH=$(readlink -f "$BERTH")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/berth-podman.XXXXXX)
cg_parent=berth-tests/podman-$$
name=berth-it-$$
image=docker.io/library/berth-busybox:latest

p() {
    timeout 60 podman --root "$work/root" --runroot "$work/runroot" --cgroup-manager cgroupfs \
        --events-backend file --storage-driver vfs --runtime "$BERTH" "$@"
}
opts=(--network none --cgroups=no-conmon --cgroup-parent "$cg_parent"
    --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
# shellcheck source=integration/lib.sh
. "$here/lib.sh"
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"; }

cleanup() {
    set +e
    p rm -f -t 0 "$name" >/dev/null 2>&1
    p rm -af -t 0 >/dev/null 2>&1
    remove_work_and_cgroups "$work" "$cg_parent"
}
trap cleanup EXIT

say "load a busybox image built from busybox-static"
"$here/oci-image.sh" "$work/image.tar" "$image"
p load -i "$work/image.tar" >/dev/null || fail "podman load"

say "run --rm: output and exit code"
set +e
out=$(p run --rm "${opts[@]}" "$image" sh -c 'echo hello-from-podman; exit 3')
code=$?
set -e
expect_eq "$out" hello-from-podman "run output"
expect_eq "$code" 3 "run exit code"

say "run -d, exec (exit code), exec -t, logs"
p run -d --name "$name" "${opts[@]}" "$image" sh -c 'echo logged-line; exec sleep 1000' >/dev/null || fail "run -d"
set +e
out=$(p exec "$name" sh -c 'echo in-exec; exit 5')
code=$?
set -e
expect_eq "$out" in-exec "exec output"
expect_eq "$code" 5 "exec exit code"
out=$(timeout -k 5 30 script -qec "podman --root $work/root --runroot $work/runroot --cgroup-manager cgroupfs --events-backend file --storage-driver vfs --runtime $BERTH exec -t $name tty" /dev/null | tr -d '\r') ||
    fail "exec -t did not finish: [$out]"
echo "$out" | grep -q '/dev/pts/' || fail "exec -t: no pty: [$out]"
p logs "$name" | grep -qx logged-line || fail "logs: $(p logs "$name")"

say "run -t: the container's stdio is a pty"
out=$(timeout -k 5 30 script -qec "podman --root $work/root --runroot $work/runroot --cgroup-manager cgroupfs --events-backend file --storage-driver vfs --runtime $BERTH run --rm -t ${opts[*]} $image sh -c 'tty; [ -t 1 ] && echo out-is-tty'" /dev/null | tr -d '\r') ||
    fail "run -t did not finish: [$out]"
echo "$out" | grep -q 'out-is-tty' || fail "run -t: [$out]"

say "stop, inspect's exit code, rm"
p stop -t 1 "$name" >/dev/null 2>&1 || fail "stop"
expect_eq "$(p inspect "$name" --format '{{.State.ExitCode}}')" 137 "inspect exit code after stop (sleep ignores SIGTERM as pid 1)"
p rm "$name" >/dev/null || fail "rm"
[ -z "$(p ps -aq --filter name="$name")" ] || fail "container still listed after rm"

say "PASS podman"
