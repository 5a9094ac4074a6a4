#!/bin/bash
# berth on a Kubernetes node: containerd 1.6's CRI plugin driving berth through the io.containerd.runc.v2 shim, with
# integration/cri/ (a small Rust CRI client) acting as the kubelet.
#
#   BERTH=/abs/path/to/berth integration/cri.sh          the scenarios (integration/cri/src/scenarios.rs), through
#                                                        the berth handler, then the runc handler for comparison
#   BERTH=/abs/path/to/berth integration/cri.sh bench N  exec-probe cost, berth vs runc handler (bench.rs)
#
# CRI_SYSTEMD=1: the berth handler with `SystemdCgroup = true` (kubelet's systemd cgroup driver), pods in kubelet-style
# slices, each container's scope checked with systemctl (needs systemd as PID 1: integration/systemd/tests.sh runs
# it in the systemd VM); no runc comparison. CRI_CLIENT and CRI_IMAGES (a directory with pause.tar and busybox.tar
# from oci-image.sh) give what this script otherwise builds (the VM has neither cargo nor python3).
#
# A private containerd: root, state, socket and both handlers' runtime roots in a temp dir; no TCP (the streaming
# server on 127.0.0.1 only); runtime handlers `berth` (BinaryName = berth) and `runc`. Images are built here from
# busybox-static and imported under localhost/ names (nothing is ever pulled). The pod network is a CNI config of
# loopback plus a tiny plugin of the test's own that reports a documentation address on eth0 (containerd 1.6
# requires one) and changes nothing: a pod gets its own network namespace with only lo. Everything (pods, shims,
# containerd, mounts, cgroups, shim sockets, the temp dir) is removed on exit, pass or fail, and checked to be gone:
# the test ends by leaving a pod running, as a kubelet killed halfway would.
set -euo pipefail

mode=${1:-test}
runs=${2:-30}
BERTH=${BERTH:-$PWD/target/release/berth}
BERTH=$(readlink -f "$BERTH")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=integration/lib.sh
. "$here/lib.sh"

work=$(mktemp -d /tmp/berth-cri.XXXXXX)
sock=$work/containerd.sock
cg_parent=berth-tests/cri-$$
slice=berth-cri-$$.slice
systemd=${CRI_SYSTEMD:-0}
ctrd_pid=

# The first failure stops the script; the teardown then shows containerd's errors (runtime errors among them).
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# Shims of this containerd: found by their -address argument (1.6 shims write no pid file and outlive containerd).
our_shims() { pgrep -f -- "-address $sock( |\$)" 2>/dev/null || true; }

cleanup() {
    local rc=$?
    set +e
    if [ "$rc" != 0 ] && [ -s "$work/containerd.log" ]; then
        echo "--- containerd log (errors)" >&2
        grep -E 'level=error' "$work/containerd.log" | tail -n 8 >&2
    fi
    # The shim sockets (under /run/containerd/s, named by a hash) are recorded in each task's bundle.
    local sockets
    sockets=$(cat "$work"/state/io.containerd.runtime.v2.task/*/*/address 2>/dev/null | sed 's|^unix://||')
    if [ -n "$ctrd_pid" ]; then
        kill "$ctrd_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$ctrd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$ctrd_pid" 2>/dev/null
    fi
    for p in $(our_shims); do kill -9 "$p" 2>/dev/null; done
    # Whatever the shims left running: containers are force-deleted through each runtime's own root.
    for rt in berth runc; do
        local bin=$BERTH root=$work/$rt-root/k8s.io
        [ "$rt" = runc ] && bin=runc
        for d in "$root"/*/; do
            [ -d "$d" ] && "$bin" --root "$root" delete --force "$(basename "$d")" >/dev/null 2>&1
        done
    done
    for s in $sockets; do rm -f "$s"; done
    remove_work_and_cgroups "$work" "$cg_parent"
    find /sys/fs/cgroup -depth -type d -name "$slice:*" -exec rmdir {} \; 2>/dev/null
    # The teardown is part of the test: whatever it could not remove fails the run.
    local left=
    grep -q " $work" /proc/self/mountinfo && left="$left mounts"
    [ -e "$work" ] && left="$left $work"
    [ -n "$(find /sys/fs/cgroup -type d \( -path "*/$cg_parent" -o -name "$slice:*" \) 2>/dev/null)" ] && left="$left cgroups"
    [ -n "$(our_shims)" ] && left="$left shims"
    for s in $sockets; do [ -e "$s" ] && left="$left $s"; done
    pgrep -f '^sleep 86401$' >/dev/null && left="$left container-processes"
    if [ "$systemd" = 1 ]; then
        local units
        units=$(systemctl list-units --all --plain --no-legend 'cri-containerd-*.scope' | awk '{print $1}')
        [ -n "$units" ] && left="$left scopes($units)"
    fi
    if [ -n "$left" ]; then
        echo "FAIL: the teardown left:$left" >&2
        rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

client=${CRI_CLIENT:-}
if [ -z "$client" ]; then
    say "build the CRI client (integration/cri, its own crate; target dir target/cri)"
    CARGO_TARGET_DIR=$repo/target/cri cargo build --release --locked --quiet \
        --manifest-path "$here/cri/Cargo.toml" --target x86_64-unknown-linux-gnu
    client=$repo/target/cri/x86_64-unknown-linux-gnu/release/berth-cri-test
fi

say "CNI: loopback and a plugin that reports 192.0.2.x on eth0 and changes nothing"
loopback=/usr/lib/cni/loopback
mkdir -p "$work/cni/bin" "$work/cni/conf" "$work/logs"
if [ -x "$loopback" ]; then
    ln -s "$loopback" "$work/cni/bin/loopback"
elif [ "$systemd" = 1 ]; then
    # The systemd VM's image has no CNI plugins, and containerd 1.6 always runs `loopback`: a stand-in that reports
    # lo and changes nothing (the pod's lo stays down; no scenario uses it).
    cat >"$work/cni/bin/loopback" <<'EOF'
#!/bin/sh
v=$(sed -n 's/.*"cniVersion" *: *"\([^"]*\)".*/\1/p' | head -n 1)
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"%s","interfaces":[{"name":"lo","sandbox":"%s"}],"ips":[{"version":"4","address":"127.0.0.1/8","interface":0}]}\n' "${v:-0.3.1}" "$CNI_NETNS" ;;
VERSION) printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}\n' ;;
esac
EOF
    chmod +x "$work/cni/bin/loopback"
else
    fail "$loopback missing (apt-get install containernetworking-plugins)"
fi
cat >"$work/cni/bin/berth-test-net" <<'EOF'
#!/bin/sh
# CNI ADD: report a documentation address on eth0, make nothing. DEL/CHECK: nothing to undo or check.
cat >/dev/null
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[{"version":"4","address":"192.0.2.%d/24","interface":0}]}\n' "$CNI_NETNS" "$(( $$ % 250 + 2 ))" ;;
VERSION) printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}\n' ;;
esac
EOF
chmod +x "$work/cni/bin/berth-test-net"
cat >"$work/cni/conf/10-berth-test.conflist" <<'EOF'
{"cniVersion":"0.4.0","name":"berth-test","plugins":[{"type":"loopback"},{"type":"berth-test-net"}]}
EOF

say "images: pause and busybox, from busybox-static, imported as localhost/..."
pause=localhost/berth-test/pause:1
image=localhost/berth-test/busybox:1
if [ -n "${CRI_IMAGES:-}" ]; then
    cp "$CRI_IMAGES/pause.tar" "$CRI_IMAGES/busybox.tar" "$work/"
else
    "$here/oci-image.sh" "$work/pause.tar" "$pause" '["sleep","2147483647"]'
    "$here/oci-image.sh" "$work/busybox.tar" "$image"
fi

say "containerd with the CRI plugin on $sock (everything under $work)"
runc_handler=
if [ "$systemd" != 1 ]; then runc_handler=$(cri_handler runc "$(command -v runc)" "$work/runc-root"); fi
{
    containerd_config "$work" "$sock" cri
    cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = "$pause"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$work/cni/bin"
    conf_dir = "$work/cni/conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "berth"
$(cri_handler berth "$BERTH" "$work/berth-root" "$([ "$systemd" = 1 ] && echo true || echo false)")
$runc_handler
EOF
} >"$work/config.toml"
start_containerd "$work/config.toml" "$work/containerd.log" "$sock" || fail "containerd did not start"
ctr() { timeout 120 /usr/bin/ctr --address "$sock" --namespace k8s.io "$@"; }
ctr images import "$work/pause.tar" >/dev/null || fail "import $pause"
ctr images import "$work/busybox.tar" >/dev/null || fail "import $image"

export CRI_SOCKET=$sock BERTH CG_PARENT=$cg_parent SLICE_PARENT=$cg_parent/$slice LOG_DIR=$work/logs IMAGE=$image
# kubelet's systemd driver: pods in kubepods-besteffort-pod<uid>.slice, a host-network one in kubepods-burstable.slice
# (in the emulated VM, several times slower than the host: 3x the time bounds of stop and exit)
[ "$systemd" = 1 ] && export SYSTEMD_CGROUP=1 CG_PARENT=kubepods-besteffort SLICE_PARENT=kubepods-burstable.slice \
    TIME_SCALE=${TIME_SCALE:-3}
with_berth() { HANDLER=berth RUNTIME_BIN=$BERTH RUNTIME_ROOT=$work/berth-root/k8s.io "$@"; }
with_runc() { HANDLER=runc RUNTIME_BIN=$(command -v runc) RUNTIME_ROOT=$work/runc-root/k8s.io "$@"; }
case $mode in
test)
    with_berth "$client" test || fail "CRI scenarios (handler berth)"
    if [ "$systemd" = 1 ]; then
        with_berth "$client" abandon || fail "leave a pod running"
        say "teardown: containerd, shims, containers, mounts, scopes go; nothing may be left"
        exit 0
    fi
    say "the same scenarios through the runc handler: what they expect is runc's behaviour"
    with_runc "$client" test || fail "CRI scenarios (handler runc): the test expects something runc does not do"
    with_berth "$client" abandon || fail "leave a pod running"
    say "teardown: containerd, shims, containers, mounts, cgroups and shim sockets go; nothing may be left"
    ;;
bench) with_berth "$client" bench "$runs" || fail "CRI exec-probe benchmark" ;;
*) fail "unknown mode $mode" ;;
esac
