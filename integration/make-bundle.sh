#!/usr/bin/env bash
# usage: make-bundle.sh DIR [COMMAND ARG...]
# Assembles an OCI bundle in DIR from busybox-static (apt) and berth's default spec, with process.terminal off and
# the given command (default: sh). The cgroup is relative (under the caller's own), named after the directory.
set -euo pipefail
dir=$1; shift
here=$(cd "$(dirname "$0")/.." && pwd)
berth=${BERTH:-$here/target/release/berth}
busybox=$(command -v busybox || echo /bin/busybox)
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || { echo "need busybox-static (apt-get install busybox-static)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/rootfs/etc/group"
(cd "$dir" && "$berth" spec)
[ $# -gt 0 ] || set -- sh
args=$(printf '%s\n' "$@" | python3 -c 'import json,sys; print(json.dumps([l.rstrip("\n") for l in sys.stdin]))')
python3 - "$dir/config.json" "$args" "$(basename "$dir")" <<'PY'
import json, sys
path, args, name = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["linux"]["cgroupsPath"] = "berth/" + name
json.dump(c, open(path, "w"), indent=2)
PY
