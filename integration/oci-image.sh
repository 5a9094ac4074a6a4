#!/bin/bash
# Builds a busybox OCI image archive (an OCI layout in a tar, as `ctr images import` and `podman load` take it)
# from the host's busybox-static: no registry, no network.
#
#   integration/oci-image.sh OUT.tar NAME:TAG [CMD-JSON]     (CMD-JSON: the image's Cmd, default ["sh"])
set -euo pipefail

out=$1
ref=$2
cmd=${3:-'["sh"]'}
name=${ref%:*}
tag=${ref##*:}
work=$(mktemp -d /tmp/berth-oci-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

busybox=$(command -v busybox)
layer=$work/layer
mkdir -p "$layer/bin" "$layer/etc" "$layer/tmp" "$layer/root" "$layer/proc" "$layer/sys" "$layer/dev"
cp "$busybox" "$layer/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$layer/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$layer/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$layer/etc/group"
chmod 1777 "$layer/tmp"

oci=$work/oci
mkdir -p "$oci/blobs/sha256"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$layer" -cf "$work/layer.tar" .
layer_digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar")
mv "$work/layer.tar" "$oci/blobs/sha256/$layer_digest"

blob() { # stdin -> blob; prints "digest size"
    local tmp=$work/blob
    cat >"$tmp"
    local d s
    d=$(sha256sum "$tmp" | cut -d' ' -f1)
    s=$(stat -c %s "$tmp")
    mv "$tmp" "$oci/blobs/sha256/$d"
    echo "$d $s"
}

read -r config_digest config_size < <(printf '%s' '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":'"$cmd"',"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:'"$layer_digest"'"]},"history":[{"created_by":"berth integration/oci-image.sh"}]}' | blob)
read -r manifest_digest manifest_size < <(printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}' | blob)
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"$manifest_size"',"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"'"$name:$tag"'","org.opencontainers.image.ref.name":"'"$tag"'"}}]}' >"$oci/index.json"
tar -C "$oci" -cf "$out" oci-layout index.json blobs
