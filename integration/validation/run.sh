#!/usr/bin/env bash
# Run the OCI runtime-tools validation suite against an OCI runtime (berth by
# default) and print a per-test summary table.
#
# This script only RUNS prebuilt validation programs; it never builds them and
# nothing of the suite is kept in this repository.
#
# Getting the suite (done once per machine, outside this repository):
#   Take a copy of the upstream opencontainers/runtime-tools sources and place
#   it in a directory of its own, e.g. /opt/runtime-tools.  Its Go dependencies
#   are vendored, so no module download is needed.  It needs Go 1.21 or newer
#   (its go.mod says 1.21; Debian bookworm's default golang-go is 1.19, so take
#   golang-1.23-go from bookworm-backports and put /usr/lib/go-1.23/bin first
#   in PATH).  In that directory run upstream's make targets
#   "runtimetest" and "validation-executables" (with GOFLAGS=-mod=vendor).
#   That yields ./runtimetest (static, copied into every test bundle) and one
#   program per test, validation/<name>/<name>.t, each emitting TAP on stdout.
#   Point VALIDATION_DIR at that directory.
#
# Usage:
#   integration/validation/run.sh [-o SUMMARY_FILE] [-l LOG_DIR] [-t SECONDS]
#                                 [-e] [TEST ...]
#     TEST      test names (e.g. "hostname", "validation/kill/kill.t");
#               default: every validation/*/*.t in VALIDATION_DIR
#     -o FILE   also write the summary table to FILE
#     -l DIR    keep each test's TAP stdout/stderr in DIR
#               (default: a fresh directory under /tmp, printed at the end)
#     -t SECS   per-test timeout (default 120, or $TEST_TIMEOUT)
#     -e        exit 0 even when tests fail (still exits non-zero on misuse)
#
# Environment:
#   VALIDATION_DIR     directory holding the built suite (default /opt/runtime-tools)
#   RUNTIME            runtime binary (default <repo>/target/release/berth)
#   RUNTIME_STATE_DIR  the runtime's default state root, used to find leftover
#                      containers (default /run/<basename of RUNTIME>)
#   TEST_TIMEOUT       per-test timeout in seconds (default 120)
#
# The programs are run from VALIDATION_DIR (they open rootfs-<arch>.tar.gz and
# runtimetest relative to the working directory) as root, one at a time (the
# cgroup tests share fixed cgroup names).  After each program, leftovers are
# removed: containers the runtime still lists or keeps state for, processes
# still running inside a test bundle, the bundles themselves under $TMPDIR, and
# cgroups created during the test.
#
# Exit status: 0 if every selected test passed (or -e), 1 if any failed,
# errored or timed out, 2 on bad usage or a missing suite/runtime.

set -u
set -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

VALIDATION_DIR=${VALIDATION_DIR:-/opt/runtime-tools}
RUNTIME=${RUNTIME:-$REPO_ROOT/target/release/berth}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
SUMMARY_FILE=
LOG_DIR=
ALWAYS_ZERO=0
TMP_BASE=${TMPDIR:-/tmp}

die() {
    echo "run.sh: $*" >&2
    exit 2
}

usage() {
    sed -n '/^# Usage:/,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while getopts ":o:l:t:eh" opt; do
    case $opt in
        o) SUMMARY_FILE=$OPTARG ;;
        l) LOG_DIR=$OPTARG ;;
        t) TEST_TIMEOUT=$OPTARG ;;
        e) ALWAYS_ZERO=1 ;;
        h) usage ;;
        :) die "option -$OPTARG needs an argument" ;;
        *) die "unknown option -$OPTARG (see -h)" ;;
    esac
done
shift $((OPTIND - 1))

[[ $TEST_TIMEOUT =~ ^[0-9]+$ ]] && ((TEST_TIMEOUT > 0)) ||
    die "timeout must be a positive number of seconds, got '$TEST_TIMEOUT'"
[[ $(id -u) -eq 0 ]] || die "the validation suite must run as root"
command -v timeout >/dev/null || die "coreutils 'timeout' is required"

# ---------------------------------------------------------------- preflight

case $(uname -m) in
    x86_64) GOARCH=amd64 ;;
    aarch64) GOARCH=arm64 ;;
    i?86) GOARCH=386 ;;
    *) GOARCH=$(uname -m) ;;
esac

[[ -d $VALIDATION_DIR ]] ||
    die "VALIDATION_DIR '$VALIDATION_DIR' does not exist; build the runtime-tools validation suite there first (see the header of this script)"
VALIDATION_DIR=$(cd "$VALIDATION_DIR" && pwd)
missing=()
[[ -x $VALIDATION_DIR/runtimetest ]] || missing+=("runtimetest")
[[ -f $VALIDATION_DIR/rootfs-$GOARCH.tar.gz ]] || missing+=("rootfs-$GOARCH.tar.gz")
shopt -s nullglob
all_tests=("$VALIDATION_DIR"/validation/*/*.t)
shopt -u nullglob
((${#all_tests[@]} > 0)) || missing+=("validation/*/*.t")
if ((${#missing[@]} > 0)); then
    die "VALIDATION_DIR '$VALIDATION_DIR' lacks the prebuilt suite (missing: ${missing[*]}); build it with upstream's 'make runtimetest validation-executables' as described in the header of this script"
fi

if [[ $RUNTIME != */* ]]; then
    resolved=$(command -v "$RUNTIME") || die "runtime '$RUNTIME' not found in PATH"
    RUNTIME=$resolved
fi
[[ -x $RUNTIME && -f $RUNTIME ]] ||
    die "runtime '$RUNTIME' is not an executable file (build berth with 'cargo build --release' or set RUNTIME)"
# The tests run with VALIDATION_DIR as their working directory.
RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME")
RUNTIME_STATE_DIR=${RUNTIME_STATE_DIR:-/run/$(basename "$RUNTIME")}

# Test selection.
tests=()
if (($# == 0)); then
    tests=("${all_tests[@]}")
else
    for arg in "$@"; do
        name=${arg##*/}
        name=${name%.t}
        name=${name%.go}
        t=$VALIDATION_DIR/validation/$name/$name.t
        [[ -x $t ]] || die "no built test '$name' ($t)"
        tests+=("$t")
    done
fi

if [[ -z $LOG_DIR ]]; then
    LOG_DIR=$(mktemp -d "$TMP_BASE/berth-validation.XXXXXX") || die "cannot create a log directory"
else
    mkdir -p "$LOG_DIR" || die "cannot create log directory '$LOG_DIR'"
fi
LOG_DIR=$(cd "$LOG_DIR" && pwd)

# ---------------------------------------------------------------- cleanup

# Cgroup directories present now, one per line, under every mounted hierarchy.
cgroup_snapshot() {
    find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | LC_ALL=C sort
}

# Container ids the runtime knows about: "list -q" if the runtime has it, plus
# entries of its state root.
runtime_ids() {
    local out
    if out=$(timeout 10 "$RUNTIME" list -q 2>/dev/null); then
        printf '%s\n' "$out"
    fi
    if [[ -d $RUNTIME_STATE_DIR ]]; then
        find "$RUNTIME_STATE_DIR" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null
    fi
}

test_bundles() {
    find "$TMP_BASE" -mindepth 1 -maxdepth 1 -type d \( -name 'ocitest*' -o -name 'oci-pid*' \) 2>/dev/null | LC_ALL=C sort
}

# Is pid a process whose root directory is not the host's "/"?  Container
# processes are pivoted into their bundle; the host's own processes are not.
in_container_root() {
    local root
    root=$(readlink "/proc/$1/root" 2>/dev/null) || return 1
    [[ -n $root && $root != / ]]
}

# This script's own cgroup directory in every mounted hierarchy.  A cgroup
# created during a test next to one of them (same parent, not below ours)
# belongs to whoever manages our cgroup, not to the test, and is left alone.
declare -a own_cg_dirs=()
while IFS=' ' read -r mnt; do
    while IFS=: read -r _ _ path; do
        [[ -z $path || $path == / ]] && continue
        if grep -qx "$$" "$mnt$path/cgroup.procs" 2>/dev/null; then
            own_cg_dirs+=("$mnt|$mnt$path")
        fi
    done </proc/self/cgroup
done < <(awk '$0 ~ / - cgroup2? / { print $5 }' /proc/self/mountinfo)

cgroup_is_foreign() {
    # $1 = absolute cgroup directory
    local entry mnt own parent
    for entry in "${own_cg_dirs[@]}"; do
        mnt=${entry%%|*}
        own=${entry#*|}
        parent=${own%/*}
        [[ $parent == "$mnt" ]] && continue
        if [[ $1 == "$parent"/* && $1 != "$own" && $1 != "$own"/* ]]; then
            return 0
        fi
    done
    return 1
}

# Mount points at or below $1 in this mount namespace, deepest first.  Tests
# that drop the mount namespace (linux_ns_itype, linux_ns_nopath) make the
# runtime mount /proc, /dev, ... of the bundle in the host namespace.
mounts_under() {
    awk -v top="$1" '{
        m = $5
        gsub(/\\040/, " ", m)
        if (m == top || index(m, top "/") == 1) print length(m) "\t" m
    }' /proc/self/mountinfo | sort -rn | cut -f2-
}

# Remove a test bundle; never recurse through a mount point.
remove_bundle() {
    local b=$1 m pass
    for pass in 1 2 3; do
        [[ -z $(mounts_under "$b") ]] && break
        while IFS= read -r m; do
            [[ -n $m ]] && umount -l "$m" 2>/dev/null
        done < <(mounts_under "$b")
    done
    if [[ -n $(mounts_under "$b") ]]; then
        echo "bundle(kept, still mounted):$b"
        return
    fi
    rm -rf --one-file-system -- "$b" 2>/dev/null
    if [[ -e $b ]]; then
        echo "bundle(not removed):$b"
    else
        echo "bundle:$b"
    fi
}

kill_pid_if_contained() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    ((pid > 1 && pid != $$)) || return 0
    in_container_root "$pid" && kill -KILL "$pid" 2>/dev/null
    return 0
}

# $1 = cgroup snapshot before the test, $2 = bundle list before, $3 = ids before
cleanup_after_test() {
    local cg_before=$1 bundles_before=$2 ids_before=$3
    local id pid state b d p cg_after bundles_after ids_after
    local -a leftovers=()

    # Containers left behind by the test.
    ids_after=$(runtime_ids | LC_ALL=C sort -u)
    while IFS= read -r id; do
        [[ -z $id ]] && continue
        state=$(timeout 10 "$RUNTIME" state "$id" 2>/dev/null) || state=
        pid=$(printf '%s' "$state" | sed -n 's/.*"pid"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n1)
        timeout 10 "$RUNTIME" kill "$id" KILL >/dev/null 2>&1
        timeout 20 "$RUNTIME" delete --force "$id" >/dev/null 2>&1 ||
            timeout 20 "$RUNTIME" delete "$id" >/dev/null 2>&1
        [[ -n $pid ]] && kill_pid_if_contained "$pid"
        if [[ -d $RUNTIME_STATE_DIR/$id ]]; then
            rm -rf --one-file-system -- "${RUNTIME_STATE_DIR:?}/$id"
        fi
        leftovers+=("container:$id")
    done < <(LC_ALL=C comm -13 <(printf '%s\n' "$ids_before") <(printf '%s\n' "$ids_after"))

    # Processes still running inside a test bundle (e.g. after a timeout).
    bundles_after=$(test_bundles)
    local -a new_bundles=()
    while IFS= read -r b; do
        [[ -n $b ]] && new_bundles+=("$b")
    done < <(LC_ALL=C comm -13 <(printf '%s\n' "$bundles_before") <(printf '%s\n' "$bundles_after"))
    if ((${#new_bundles[@]} > 0)); then
        for p in /proc/[0-9]*; do
            pid=${p#/proc/}
            d=$(readlink "$p/root" 2>/dev/null) || continue
            for b in "${new_bundles[@]}"; do
                if [[ $d == "$b" || $d == "$b"/* ]]; then
                    kill -KILL "$pid" 2>/dev/null
                    leftovers+=("process:$pid")
                fi
            done
        done
        sleep 0.2
        for b in "${new_bundles[@]}"; do
            leftovers+=("$(remove_bundle "$b")")
        done
    fi

    # Cgroups created during the test, deepest first.
    cg_after=$(cgroup_snapshot)
    local -a new_cgs=()
    while IFS= read -r d; do
        [[ -z $d ]] && continue
        cgroup_is_foreign "$d" && continue
        new_cgs+=("$d")
    done < <(LC_ALL=C comm -13 <(printf '%s\n' "$cg_before") <(printf '%s\n' "$cg_after") |
        awk '{ print gsub("/", "/") "\t" $0 }' | sort -rn | cut -f2-)
    for d in "${new_cgs[@]}"; do
        for _ in 1 2 3 4 5; do
            [[ -d $d ]] || break
            if [[ -r $d/cgroup.procs ]]; then
                while IFS= read -r pid; do
                    kill_pid_if_contained "$pid"
                done <"$d/cgroup.procs"
            fi
            [[ -f $d/freezer.state ]] && echo THAWED >"$d/freezer.state" 2>/dev/null
            rmdir "$d" 2>/dev/null && break
            sleep 0.2
        done
        if [[ -d $d ]]; then
            leftovers+=("cgroup(not removed):${d#/sys/fs/cgroup/}")
        else
            leftovers+=("cgroup:${d#/sys/fs/cgroup/}")
        fi
    done

    if ((${#leftovers[@]} > 0)); then
        printf '%s\n' "${leftovers[@]}"
    fi
}

# ---------------------------------------------------------------- TAP parsing

# Prints "pass fail skip planned first_failure" for a TAP stream (only
# top-level lines count; nested TAP is indented or JSON-quoted).
parse_tap() {
    awk '
        BEGIN {
            pass = 0; fail = 0; skip = 0; plan = -1; first = ""; inyaml = 0; why = ""
            topyaml = 0; toperr = ""
        }
        # Some programs report their single verdict as a YAML "error" with no
        # assertion at all (hooks, prestart, poststop, ...): remember it.
        /^  ---$/ { topyaml = 1 }
        /^  \.\.\.$/ { topyaml = 0 }
        topyaml && toperr == "" && /^ *"error": "/ {
            v = $0
            sub(/^ *"error": "/, "", v); sub(/",?$/, "", v)
            gsub(/\\n/, " ", v); gsub(/\\"/, "", v); gsub(/\\\\/, "", v)
            toperr = v
        }
        # Diagnostics (YAML/JSON block) right after the first failure.
        inyaml == 1 && /^  \.\.\.$/ { inyaml = 2; next }
        inyaml == 1 && !/^[ \t#]/ { inyaml = 2 }
        inyaml == 1 {
            if ($0 ~ /^#/ && why == "") {
                v = $0; sub(/^#[ \t]*/, "", v); why = v
            }
            if ($0 ~ /^ *"(stderr|error)": "/) {
                v = $0
                sub(/^ *"/, "", v); sub(/": "/, ": ", v); sub(/",?$/, "", v)
                gsub(/\\n/, " ", v); gsub(/\\"/, "", v); gsub(/\\\\/, "", v)
                if (why == "" || v ~ /^stderr/) why = v
            }
            next
        }
        /^ok([ \t]|$)/ {
            if (tolower($0) ~ /#[ \t]*(skip|todo)/) skip++; else pass++
            next
        }
        /^not ok([ \t]|$)/ {
            if (tolower($0) ~ /#[ \t]*todo/) { skip++; next }
            fail++
            if (first == "") {
                line = $0
                sub(/^not ok[ \t]*[0-9]*[ \t]*-?[ \t]*/, "", line)
                first = line
                inyaml = 1
            }
            next
        }
        /^1\.\.[0-9]+/ {
            # Several TAP streams may be concatenated: add their plans up.
            p = $0; sub(/^1\.\./, "", p); plan = (plan < 0 ? 0 : plan) + p
        }
        /^Bail out!/ { fail++; if (first == "") first = $0 }
        END {
            if (why != "") first = first " -- " why
            gsub(/[\t\r]/, " ", first)
            gsub(/[\t\r]/, " ", toperr)
            if (toperr == "") toperr = "-"
            printf "%d\t%d\t%d\t%d\t%s\t%s\n", pass, fail, skip, plan, toperr, first
        }
    ' "$1"
}

# First meaningful line of stderr, for tests that die before reporting.
first_error_line() {
    grep -v -e '^[[:space:]]*$' -e '^exit status' "$1" 2>/dev/null | head -n2 | tr '\t\r\n' '   ' |
        sed 's/[[:space:]]*$//'
}

# ---------------------------------------------------------------- main loop

declare -a rows=()
n_pass=0 n_fail=0 n_skip=0
suite_start=$(date +%s)

echo "runtime:        $RUNTIME"
echo "validation dir: $VALIDATION_DIR"
echo "logs:           $LOG_DIR"
echo "tests:          ${#tests[@]} (timeout ${TEST_TIMEOUT}s each)"
echo

for t in "${tests[@]}"; do
    name=$(basename "$t" .t)
    out=$LOG_DIR/$name.tap
    err=$LOG_DIR/$name.stderr

    cg_before=$(cgroup_snapshot)
    bundles_before=$(test_bundles)
    ids_before=$(runtime_ids | LC_ALL=C sort -u)

    start=$(date +%s.%N)
    (cd "$VALIDATION_DIR" &&
        RUNTIME="$RUNTIME" exec timeout -k 10 "$TEST_TIMEOUT" "$t") \
        </dev/null >"$out" 2>"$err"
    rc=$?
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

    cleaned=$(cleanup_after_test "$cg_before" "$bundles_before" "$ids_before")
    if [[ -n $cleaned ]]; then
        printf '%s\n' "$cleaned" >"$LOG_DIR/$name.cleanup"
    fi

    IFS=$'\t' read -r pass fail skip plan toperr first < <(parse_tap "$out")
    [[ $toperr == - ]] && toperr=
    ran=$((pass + fail + skip))
    if ((rc == 124 || rc == 137)); then
        status=TIMEOUT
        first="timed out after ${TEST_TIMEOUT}s${first:+; first failure: $first}"
    elif ((fail > 0)); then
        status=FAIL
        errline=$(first_error_line "$err")
        [[ -n $errline ]] && first="$first [stderr: $errline]"
    elif ((ran == 0)) && [[ -n $toperr ]]; then
        # Verdict given as a YAML error without any assertion.
        status=FAIL
        fail=1
        first=$toperr
        errline=$(first_error_line "$err")
        [[ -n $errline ]] && first="$first [stderr: $errline]"
    elif ((rc != 0)); then
        status=ERROR
        first="exit $rc: $(first_error_line "$err")"
    elif ((ran == 0)); then
        # Programs such as prestart_fail or process_rlimits_fail print no
        # assertion at all and signal success by exiting 0 without an error.
        status=PASS
        first="(no assertions; exit 0 and no error reported)"
    elif ((plan >= 0 && plan != ran)); then
        status=ERROR
        first="planned $plan assertions, saw $ran"
    elif ((pass == 0 && skip > 0)); then
        status=SKIP
    else
        status=PASS
    fi
    case $status in
        PASS) n_pass=$((n_pass + 1)) ;;
        SKIP) n_skip=$((n_skip + 1)) ;;
        *) n_fail=$((n_fail + 1)) ;;
    esac
    [[ -n $cleaned ]] && first="${first:+$first }[cleaned: $(printf '%s\n' "$cleaned" | grep -c .) leftover(s)]"
    rows+=("$name"$'\t'"$status"$'\t'"$pass"$'\t'"$fail"$'\t'"$skip"$'\t'"${secs}s"$'\t'"${first:--}")
    printf '%-40s %-7s pass=%-4s fail=%-4s skip=%-4s %6ss\n' "$name" "$status" "$pass" "$fail" "$skip" "$secs" >&2
done

suite_secs=$(($(date +%s) - suite_start))

# ---------------------------------------------------------------- summary

render_summary() {
    local row
    printf '%-40s %-7s %5s %5s %5s %7s  %s\n' TEST STATUS PASS FAIL SKIP TIME "FIRST FAILING ASSERTION"
    for row in "${rows[@]}"; do
        IFS=$'\t' read -r name status pass fail skip secs first <<<"$row"
        printf '%-40s %-7s %5s %5s %5s %7s  %.160s\n' "$name" "$status" "$pass" "$fail" "$skip" "$secs" "$first"
    done
    echo
    echo "runtime: $RUNTIME"
    echo "suite:   $VALIDATION_DIR ($(git -C "$VALIDATION_DIR" describe --always --tags 2>/dev/null || echo unknown))"
    echo "time:    ${suite_secs}s for ${#tests[@]} test programs; logs in $LOG_DIR"
    echo "validation: $n_pass passed, $n_fail failed, $n_skip skipped"
}

echo
if [[ -n $SUMMARY_FILE ]]; then
    render_summary | tee "$SUMMARY_FILE"
else
    render_summary
fi

if ((n_fail > 0 && ALWAYS_ZERO == 0)); then
    exit 1
fi
exit 0
