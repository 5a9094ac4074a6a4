#!/bin/bash
# Rootless podman (4.3, conmon) driving berth: a throw-away user with /etc/subuid and /etc/subgid ranges runs
# `podman --runtime berth` with its own runtime dir (XDG_RUNTIME_DIR), the cgroupfs manager (no systemd here), the
# vfs storage driver (no fuse-overlayfs needed) and a busybox image built here and loaded as that user. podman
# calls the runtime from inside its own user namespace (uid 0 there, the subuid range mapped), where
# /sys/fs/cgroup is not writable.
#
#   BERTH=/abs/path/to/berth integration/podman-rootless.sh
#   BERTH=$(command -v runc) integration/podman-rootless.sh      # the same scenario with runc, for comparison
#
# The user, its subordinate id ranges, its processes and the work dir are removed at the end, also on failure.
set -euo pipefail

BERTH=${BERTH:-$PWD/target/release/berth}
BERTH=$(readlink -f "$BERTH")
runtime_name=$(basename "$BERTH")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=integration/lib.sh
. "$here/lib.sh"
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"; }

user=berthrl$$
work=$(mktemp -d /tmp/berth-podman-rootless.XXXXXX)
name=berth-rl-$$
image=docker.io/library/berth-busybox:latest
created_subuid=
created_subgid=
uid=

cleanup() {
    set +e
    if [ -n "$uid" ]; then
        # podman's processes (its pause process holds its user namespace) and any container process of the user.
        for _ in 1 2 3; do
            pids=$(pgrep -u "$uid")
            [ -z "$pids" ] && break
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null
            sleep 0.2
        done
    fi
    # Files of the subuid range (vfs layers) are removed as root.
    grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$work"
    id "$user" >/dev/null 2>&1 && userdel "$user" 2>/dev/null
    for f in /etc/subuid /etc/subgid; do
        [ -f "$f" ] && sed -i "/^$user:/d" "$f"
    done
    [ -n "$created_subuid" ] && [ ! -s /etc/subuid ] && rm -f /etc/subuid
    [ -n "$created_subgid" ] && [ ! -s /etc/subgid ] && rm -f /etc/subgid
}
trap cleanup EXIT

say "throw-away user $user with subordinate ids, runtime dir under $work"
useradd --no-create-home --home-dir "$work/home" --shell /bin/sh --user-group "$user"
uid=$(id -u "$user")
gid=$(id -g "$user")
[ -e /etc/subuid ] || { touch /etc/subuid; created_subuid=1; }
[ -e /etc/subgid ] || { touch /etc/subgid; created_subgid=1; }
# A range above every existing one (useradd may have added one already: ours replaces it).
sed -i "/^$user:/d" /etc/subuid /etc/subgid
start=$(awk -F: 'BEGIN { m = 1000000000 } { if ($2 + $3 > m) m = $2 + $3 } END { print m }' /etc/subuid /etc/subgid)
echo "$user:$start:65536" >>/etc/subuid
echo "$user:$start:65536" >>/etc/subgid
mkdir -p "$work/home" "$work/run" "$work/hostdir" "$work/userdir"
chmod 700 "$work/run"
chmod 755 "$work"
chown "$uid:$gid" "$work/home" "$work/run" "$work/userdir"
"$here/oci-image.sh" "$work/image.tar" "$image"
chown "$uid:$gid" "$work/image.tar"

# As the user, in a clean environment: podman finds its runtime dir, config and storage from these.
as_user() {
    setpriv --reuid "$uid" --regid "$gid" --init-groups \
        env -i HOME="$work/home" USER="$user" LOGNAME="$user" XDG_RUNTIME_DIR="$work/run" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
podman_cmd="podman --cgroup-manager cgroupfs --events-backend file --storage-driver vfs --runtime $BERTH"
p() {
    # shellcheck disable=SC2086
    as_user timeout 120 $podman_cmd "$@"
}
opts=(--network none)

say "load the image as the user"
p load -i "$work/image.tar" >/dev/null || fail "podman load"

say "run --rm: output, exit code, and the ids mapped inside (0 = the user, 1.. = its subordinate range)"
set +e
out=$(p run --rm "${opts[@]}" "$image" sh -c 'echo hello-rootless; cat /proc/self/uid_map /proc/self/gid_map; exit 3')
code=$?
set -e
expect_eq "$code" 3 "run exit code"
expect_eq "$(echo "$out" | head -1)" hello-rootless "run output"
maps=$(echo "$out" | tail -n +2 | awk '{print $1, $2, $3}' | sort -u | tr '\n' ';')
expect_eq "$maps" "0 $uid 1;1 $start 65536;" "uid and gid maps inside"

say "run -d, exec (exit code, as another user of the range), exec -t"
p run -d --name "$name" "${opts[@]}" "$image" sh -c 'echo logged-line; exec sleep 1000' >/dev/null || fail "run -d"
set +e
out=$(p exec "$name" sh -c 'echo in-exec; exit 5')
code=$?
set -e
expect_eq "$out" in-exec "exec output"
expect_eq "$code" 5 "exec exit code"
expect_eq "$(p exec --user 1000:1000 "$name" id -u)" 1000 "exec --user 1000"
out=$(as_user timeout -k 5 60 script -qec "$podman_cmd exec -t $name tty" /dev/null | tr -d '\r') ||
    fail "exec -t did not finish: [$out]"
echo "$out" | grep -q '/dev/pts/' || fail "exec -t: no pty: [$out]"
p logs "$name" | grep -qx logged-line || fail "logs: $(p logs "$name")"

say "the host's files stay the host's: root inside is the user outside"
out=$(p run --rm "${opts[@]}" -v "$work/hostdir:/h" -v "$work/userdir:/u" "$image" \
    sh -c 'touch /h/x 2>/dev/null && echo wrote-root-file; touch /u/y && echo wrote-own-file; ls -n /u/y')
echo "$out" | grep -q wrote-root-file && fail "root inside wrote a directory of the host's root: [$out]"
echo "$out" | grep -q wrote-own-file || fail "root inside could not write the user's own directory: [$out]"
[ "$(stat -c %u "$work/userdir/y")" = "$uid" ] || fail "a file made by root inside is not the user's: $(stat -c %u "$work/userdir/y")"
[ ! -e "$work/hostdir/x" ] || fail "file made in the host's root directory"

say "network host: no network namespace of its own, so /sys is the host's (a sysfs mount needs one)"
out=$(p run --rm --network host "$image" sh -c 'cat /sys/class/net/lo/address; echo x > /sys/kernel/uevent_helper || echo refused') ||
    fail "run --network host: [$out]"
echo "$out" | grep -q '00:00:00:00:00:00' || fail "network host: no host /sys: [$out]"
echo "$out" | grep -q refused || fail "network host: /sys writable: [$out]"

say "the runtime's state is in the user's runtime dir while the container runs"
[ -d "$work/run/$runtime_name" ] || fail "no state dir $work/run/$runtime_name: $(ls -la "$work/run")"
ls "$work/run/$runtime_name" | grep -q . || fail "empty state dir $work/run/$runtime_name"

say "stop, inspect's exit code, rm"
p stop -t 1 "$name" >/dev/null 2>&1 || fail "stop"
expect_eq "$(p inspect "$name" --format '{{.State.ExitCode}}')" 137 "inspect exit code after stop (sleep ignores SIGTERM as pid 1)"
p rm "$name" >/dev/null || fail "rm"
[ -z "$(p ps -aq)" ] || fail "containers still listed after rm: $(p ps -a)"

say "a memory limit: podman drops it itself on a rootless cgroup v1 host, berth must not fail the run"
out=$(p run --rm "${opts[@]}" --memory 64m "$image" echo limited 2>&1) || fail "run --memory: [$out]"
echo "$out" | grep -qx limited || fail "run --memory: [$out]"

say "nothing left: no state in $work/run/$runtime_name, no container process"
left=$(ls -A "$work/run/$runtime_name" 2>/dev/null || true)
[ -z "$left" ] || fail "state left behind in $work/run/$runtime_name: $left"
# What may remain is podman's own pause process (it holds podman's user namespace): nothing running the image.
# (A zombie conmon waiting for that process to reap it is not running either.)
procs=$(ps -u "$uid" -o pid=,stat=,args= | awk '$2 !~ /^Z/' | grep -v -e 'podman' -e 'catatonit' || true)
[ -z "$procs" ] || fail "processes left: $procs"

say "PASS podman rootless ($runtime_name)"
