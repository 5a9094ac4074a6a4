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
