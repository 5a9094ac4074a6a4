#!/bin/bash
# containerd (1.6, `ctr`, the io.containerd.runc.v2 shim) driving berth as its runc: a private containerd (own
# socket, root and state, no CRI), a busybox image built here and imported, and berth given to the shim with
# `ctr run --runc-binary` and `--runc-root` so that the test can ask berth itself about what the shim made.
#
#   BERTH=/abs/path/to/berth integration/containerd.sh
#
# Every step prints what it checks; the first failure stops the script with the logs. Everything it made
# (tasks, containers, containerd, directories, cgroups) is removed on exit, pass or fail.
set -euo pipefail

BERTH=${BERTH:-$PWD/target/release/berth}
BERTH=$(readlink -f "$BERTH")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/berth-ctrd.XXXXXX)
sock=$work/containerd.sock
ns=berth-it
runc_root=$work/berth-root
cg_parent=berth-tests/containerd-$$
ctrd_pid=
ids=()

ctr() { timeout 60 /usr/bin/ctr --address "$sock" --namespace "$ns" "$@"; }
berth() { "$BERTH" --root "$runc_root/$ns" "$@"; }
# shellcheck source=integration/lib.sh
. "$here/lib.sh"
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    echo "--- containerd log (tail)" >&2
    tail -n 40 "$work/containerd.log" >&2 || true
    for f in "$work"/state/io.containerd.runtime.v2.task/"$ns"/*/log.json; do
        [ -e "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"; }

cleanup() {
    set +e
    for id in "${ids[@]}"; do
        ctr task kill -s SIGKILL "$id" >/dev/null 2>&1
        ctr task delete -f "$id" >/dev/null 2>&1
        ctr container delete "$id" >/dev/null 2>&1
    done
    if [ -n "$ctrd_pid" ]; then
        kill "$ctrd_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$ctrd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$ctrd_pid" 2>/dev/null
    fi
    # Shims of our namespace that outlived containerd (they are ours: their socket names our address).
    for p in $(pgrep -f "containerd-shim-runc-v2 -namespace $ns -address $sock" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    remove_work_and_cgroups "$work" "$cg_parent"
}
trap cleanup EXIT

say "containerd on $sock (root and state under $work)"
containerd_config "$work" "$sock" >"$work/config.toml"
start_containerd "$work/config.toml" "$work/containerd.log" "$sock" || fail "containerd did not start"
ctr version >/dev/null || fail "ctr cannot talk to containerd"

say "import a busybox image built from busybox-static"
image=docker.io/library/berth-busybox:latest
"$here/oci-image.sh" "$work/image.tar" "$image"
ctr images import "$work/image.tar" >/dev/null || fail "ctr images import"
ctr images ls -q | grep -qx "$image" || fail "image not listed after import"

run_opts=(--runc-binary "$BERTH" --runc-root "$runc_root")
# Sets $id and remembers it for the cleanup.
new_id() { id="berth-it-$$-$1"; ids+=("$id"); }

say "ctr run: output and exit code"
new_id run
set +e
out=$(ctr run --rm "${run_opts[@]}" --cgroup "$cg_parent/$id" "$image" "$id" sh -c 'echo hello-from-berth; exit 3')
code=$?
set -e
expect_eq "$out" hello-from-berth "ctr run output"
expect_eq "$code" 3 "ctr run exit code"
ctr container ls -q | grep -qx "$id" && fail "--rm left the container"
[ -e "$runc_root/$ns/$id" ] && fail "berth state of $id left behind"

say "a long-running task survives its ctr client; berth reports it running"
new_id long
ctr run "${run_opts[@]}" --cgroup "$cg_parent/$id" "$image" "$id" \
    sh -c 'i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.2; done' >"$work/long.out" 2>&1 &
client=$!
for _ in $(seq 100); do grep -q tick-3 "$work/long.out" && break; sleep 0.1; done
grep -q tick-3 "$work/long.out" || fail "no output from the long-running task: $(cat "$work/long.out")"
kill -9 "$client"
wait "$client" 2>/dev/null || true
sleep 0.5
ctr task ls | grep -E "^$id[[:space:]]+[0-9]+[[:space:]]+RUNNING" >/dev/null || fail "task died with its client: $(ctr task ls)"
expect_eq "$(berth state "$id" | grep -o '"status": *"[a-z]*"' | grep -o '[a-z]*"$' | tr -d '"')" running "berth state after ctr exited"

say "reattach to it"
# ctr attach forwards SIGTERM to the task instead of exiting: stop it with SIGKILL.
timeout -s KILL 3 /usr/bin/ctr --address "$sock" --namespace "$ns" task attach "$id" >"$work/attach.out" 2>&1 </dev/null || true
grep -q tick- "$work/attach.out" || fail "ctr task attach saw no output: $(cat "$work/attach.out")"

say "ctr task exec without a terminal: output and exit code"
set +e
out=$(ctr task exec --exec-id e1 "$id" sh -c 'echo in-exec; exit 4')
code=$?
set -e
expect_eq "$out" in-exec "exec output"
expect_eq "$code" 4 "exec exit code"

say "ctr task exec with a terminal (pty master through the console socket)"
# timeout goes outside script: inside, it would put ctr in a background process group of the pty and ctr's switch
# to raw mode would stop it with SIGTTOU. (Only when script's $SHELL is dash, as in CI: bash execs a lone command,
# which leaves timeout the session leader, unable to change its process group.)
out=$(timeout -k 5 20 script -qec "ctr --address $sock --namespace $ns task exec -t --exec-id e2 $id tty" /dev/null | tr -d '\r') ||
    fail "exec -t did not finish: [$out]"
echo "$out" | grep -q '/dev/pts/' || fail "exec -t: no pty in the container: [$out]"

if berth ps --help >/dev/null 2>&1; then
    say "ctr task ps"
    ctr task ps "$id" | grep -q . || fail "ctr task ps"
else
    say "SKIP ctr task ps: berth has no ps command yet"
fi
if berth pause --help >/dev/null 2>&1; then
    say "ctr task pause / resume"
    ctr task pause "$id" || fail "pause"
    ctr task ls | grep -E "^$id[[:space:]].*PAUSED" >/dev/null || fail "not paused: $(ctr task ls)"
    ctr task resume "$id" || fail "resume"
    ctr task ls | grep -E "^$id[[:space:]].*RUNNING" >/dev/null || fail "not running after resume"
else
    say "SKIP ctr task pause/resume: berth has no pause/resume commands yet"
fi

say "ctr task kill, then delete"
ctr task kill -s SIGKILL "$id"
# The task shows STOPPED, or is already cleaned up when its shim noticed the exit first.
for _ in $(seq 50); do ctr task ls | grep -E "^$id[[:space:]].*RUNNING" >/dev/null || break; sleep 0.1; done
ctr task ls | grep -E "^$id[[:space:]].*RUNNING" >/dev/null && fail "task still running after kill: $(ctr task ls)"
ctr task delete "$id" >/dev/null 2>&1 || true
ctr container delete "$id" || fail "ctr container delete"
[ -e "$runc_root/$ns/$id" ] && fail "berth state of $id left behind after delete"

say "PASS containerd"
