# shellcheck shell=bash
# Shared by the client integration scripts (sourced, not run).

say() { printf '== %s\n' "$*"; }

# remove_work_and_cgroups WORK CG_PARENT: unmounts what is left under WORK (deepest first) and removes it, then the
# relative cgroup CG_PARENT. A relative cgroup lands under the caller's own cgroup in each hierarchy (which need not
# be the root), so it is searched for wherever it is, deepest directories first; then the shared berth-tests parents
# (rmdir refuses them while other tests still have cgroups there).
remove_work_and_cgroups() {
    local work=$1 cg_parent=$2
    grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$work"
    find /sys/fs/cgroup -depth -type d \( -path "*/$cg_parent" -o -path "*/$cg_parent/*" \) -exec rmdir {} \; 2>/dev/null
    find /sys/fs/cgroup -depth -type d -name berth-tests -exec rmdir {} \; 2>/dev/null
    true
}

# containerd_config WORK SOCK [cri]: a private containerd's config (on stdout): root and state under WORK, the API
# on SOCK, no ttrpc, debug or metrics endpoint; the CRI plugin disabled unless the third argument is `cri` (then the
# caller appends its [plugins."io.containerd.grpc.v1.cri"] section, with cri_handler's handlers).
containerd_config() {
    local work=$1 sock=$2 cri=${3:-}
    printf 'version = 2\nroot = "%s"\nstate = "%s"\n' "$work/root" "$work/state"
    [ "$cri" = cri ] || echo 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'
    printf '[grpc]\n  address = "%s"\n[ttrpc]\n  address = ""\n[debug]\n  address = ""\n[metrics]\n  address = ""\n' "$sock"
}

# cri_handler NAME BINARY ROOT [SYSTEMD_CGROUP]: a runtime handler of the CRI plugin: the io.containerd.runc.v2
# shim running BINARY with --root ROOT, and with --systemd-cgroup when SYSTEMD_CGROUP is `true` (kubelet's systemd
# cgroup driver: containerd then sends cgroupsPath `<pod slice>:cri-containerd:<id>`).
cri_handler() {
    cat <<EOH
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$1]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$1.options]
        BinaryName = "$2"
        Root = "$3"
        SystemdCgroup = ${4:-false}
EOH
}

# start_containerd CONFIG LOG SOCK: starts containerd in the background (its pid in ctrd_pid) and waits up to 15 s
# for its socket; fails if containerd died or the socket did not come.
start_containerd() {
    containerd --config "$1" >"$2" 2>&1 &
    ctrd_pid=$!
    for _ in $(seq 150); do
        [ -S "$3" ] && return 0
        kill -0 "$ctrd_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    [ -S "$3" ]
}
