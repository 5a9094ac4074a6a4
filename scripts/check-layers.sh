#!/usr/bin/env bash
# Fails when a module imports one above it (docs/architecture.md): commands → container → {process, rootfs,
# cgroups, namespaces} → sys, with the leaves usable from anywhere; when `unsafe` code appears outside src/sys; and
# when berth starts a thread (sys::clone3_fork relies on berth having one). Run by `make lint`.
set -euo pipefail
cd "$(dirname "$0")/../src"

leaves="oci_state procfs lsm resolve mountinfo time logging config"
# module: the top-level modules it may import (besides itself). config is listed as a leaf for its users; its own
# imports (validators in process and namespaces, the fuzz test) are not checked yet.
declare -A allowed=(
    [sys]=""
    [oci_state]="sys" [procfs]="sys" [lsm]="sys procfs" [resolve]="sys" [mountinfo]="sys" [time]="sys"
    [logging]="sys time"
    [namespaces]="sys $leaves"
    [cgroups]="sys $leaves"
    [rootfs]="sys namespaces $leaves"
    [process]="sys namespaces rootfs cgroups $leaves"
)

bad=0
for module in "${!allowed[@]}"; do
    files=""
    for f in "$module" "$module.rs"; do [ -e "$f" ] && files="$files $f"; done
    [ -n "$files" ] || { echo "check-layers: no module $module" >&2; exit 1; }
    # `crate::{a, b}` would hide what is imported: one path per use.
    if grep -rHnE 'crate::\{' $files; then
        echo "check-layers: write one crate:: path per import in $module" >&2
        bad=1
    fi
    while IFS=: read -r file line used; do
        [ "$used" = "$module" ] && continue
        case " ${allowed[$module]} " in *" $used "*) continue ;; esac
        echo "$file:$line: $module imports crate::$used, which is not below it (docs/architecture.md)" >&2
        bad=1
    done < <(grep -rHnoE 'crate::[a-z_]+' $files | sed -E 's/crate::([a-z_]+)$/\1/')
done
if grep -rnE '(^|[^a-z_])unsafe +(\{|fn|impl|extern)' --include='*.rs' . | grep -v '^\./sys/'; then
    echo "check-layers: unsafe code belongs in src/sys, behind a safe function" >&2
    bad=1
fi
# Any use of std::thread but sleep (a thread started, or a Builder/scope/spawn imported for it).
if grep -rnE 'thread::(spawn|scope|Builder)|use std::thread::\{|use std::thread;' --include='*.rs' .; then
    echo "check-layers: berth stays single-threaded (sys::clone3_fork relies on it): no threads" >&2
    bad=1
fi
exit $bad
