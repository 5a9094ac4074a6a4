#!/usr/bin/env bash
# run-in-vm.sh - run a command in a throw-away QEMU VM whose only cgroup hierarchy is cgroup v2.
#
# usage: run-in-vm.sh [--mem MB] [--timeout SEC] [--add PATH]... DIR -- COMMAND [ARG...]
#
#   --mem MB       guest RAM in MiB (default 1024)
#   --timeout SEC  kill the VM SEC seconds after it was started and exit 124 (default 3600, 0 = never)
#   --add PATH     copy host file or directory PATH into the guest at the same absolute path (dynamically linked
#                  ELF files bring the shared libraries ldd reports); repeatable
#
# The guest runs Debian's generic kernel with busybox + bash in an initramfs, cgroup2 mounted at /sys/fs/cgroup
# with every available controller enabled in the root's cgroup.subtree_control, and host DIR shared read-write
# over virtio-9p at the same absolute path; /dev/vda and /dev/vdb are empty 64 MiB disks (sparse files in this
# script's temp dir) for the io controller, iocost enabled on vda only; the Soft-RoCE driver rdma_rxe is loaded
# (no RDMA device yet: a test makes one) for the rdma controller. COMMAND runs as root, in the root cgroup,
# with cwd = DIR, stdin /dev/null, and its stdout/stderr streamed to ours. Exit status: COMMAND's; 124 on timeout; 125 when the VM
# itself failed (the guest console tail is printed on stderr).
#
# Environment: BERTH_VM_ACCEL=auto|kvm|tcg (auto: KVM if it boots within BERTH_VM_KVM_BOOT_TIMEOUT=10 s,
# else TCG; a failed KVM attempt is remembered in the cache), BERTH_VM_CPUS (default: min(nproc, 4)),
# BERTH_VM_VERBOSE=1 (print the guest console and timings to stderr), BERTH_VM_CACHE (cache directory,
# default ${XDG_CACHE_HOME:-$HOME/.cache}/berth-cgv2-vm). Inside the guest BERTH_CGV2_VM=1 is set.
# Missing host tools are installed with apt-get (qemu-system-x86 busybox-static cpio xz-utils); the kernel .deb
# comes from `apt-get download`. Nothing else touches the network.
set -eEuo pipefail
trap 'exit 125' ERR   # any unexpected failure of this script counts as "the VM failed"

me=run-in-vm.sh
fail() { echo "$me: $*" >&2; exit 125; }
note() { if [ "$verbose" = 1 ]; then echo "$me: $*" >&2; fi; }
usage() { sed -n 's/^# \{0,1\}//; 4p' "$0" >&2; exit 125; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

mem=1024 timeout=3600 adds=() disk_mb=64
verbose=${BERTH_VM_VERBOSE:-0} accel=${BERTH_VM_ACCEL:-auto}
while [ $# -gt 0 ]; do
  case $1 in
    --mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
    --add) [ $# -ge 2 ] || usage; adds+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set/d; s/^# \{0,1\}//; p}' "$0"; exit 0 ;;
    --) usage ;;
    -*) fail "unknown option: $1" ;;
    *) break ;;
  esac
done
if [ $# -lt 3 ] || [ "$2" != -- ]; then usage; fi
[[ $mem =~ ^[1-9][0-9]*$ ]] || fail "--mem wants a number of MiB"
[[ $timeout =~ ^[0-9]+$ ]] || fail "--timeout wants a number of seconds"
case $accel in auto|kvm|tcg) ;; *) fail "BERTH_VM_ACCEL must be auto, kvm or tcg" ;; esac
dir=$(cd "$1" 2>/dev/null && pwd -P) || fail "not a directory: $1"
shift 2
case $dir/ in
  /|/bin/*|/sbin/*|/lib/*|/lib64/*|/usr/*|/etc/*|/proc/*|/sys/*|/dev/*|/init/*|/berth/*|/newroot/*)
    fail "DIR $dir would hide the guest's own files; use a directory elsewhere" ;;
esac
cpus=${BERTH_VM_CPUS:-$(n=$(nproc); echo $(( n > 4 ? 4 : n )))}
t_start=$(now_ms)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-cgv2-vm.XXXXXX")
qemu_pid='' reader_pids=() vm_ms=0 t_vm=''
unblock_readers() {  # a fifo reader whose writer never came is blocked in open(): give it an EOF
  local f p
  for f in "$tmp/out" "$tmp/err"; do [ -p "$f" ] && { exec 7<>"$f"; exec 7>&-; }; done
  for p in ${reader_pids[@]+"${reader_pids[@]}"}; do wait "$p" 2>/dev/null || true; done
  reader_pids=()
}
stop_qemu() {  # TERM, up to 5 s to go, then KILL
  [ -n "$qemu_pid" ] || return 0
  local _
  kill "$qemu_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$qemu_pid" 2>/dev/null; then kill -KILL "$qemu_pid" 2>/dev/null || true; fi
  qemu_pid=
}
cleanup() { stop_qemu; unblock_readers; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------------------------------------- host tools --------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "$me: installing ${need_pkgs[*]} with apt-get" >&2
  inst() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" "${need_pkgs[@]}"; }
  # If some QEMU package is already installed from another suite (e.g. qemu-utils from backports), the
  # default suite's qemu-system-x86 conflicts with it: then install from that suite.
  qemu_suite() {
    apt-cache policy qemu-utils qemu-system-common qemu-system-data 2>/dev/null |
      awk '/^ \*\*\* / {mine = 1; next} /^ +[^ ]+ [0-9-]+$/ {mine = 0}
           mine && $2 ~ /:\/\// {split($3, a, "/"); print a[1]; exit}'
  }
  install_ok=0
  for attempt in 1 2; do
    if inst >>"$tmp/apt.log" 2>&1; then install_ok=1; break; fi
    suite=$(qemu_suite || true)
    if [ -n "$suite" ] && inst -t "$suite" >>"$tmp/apt.log" 2>&1; then install_ok=1; break; fi
    [ $attempt = 1 ] && { as_root apt-get update -q >>"$tmp/apt.log" 2>&1 || true; }
  done
  [ $install_ok = 1 ] || cat "$tmp/apt.log" >&2
  [ $install_ok = 1 ] || fail "could not install ${need_pkgs[*]}; install them yourself (apt-get install ${need_pkgs[*]})"
fi
for t in qemu-system-x86_64 cpio xz dpkg-deb apt-get flock ldd; do command -v $t >/dev/null || fail "$t not found"; done
busybox=/bin/busybox
ldd "$busybox" >/dev/null 2>&1 && fail "$busybox is dynamically linked; apt-get install busybox-static"

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache=${BERTH_VM_CACHE:-${XDG_CACHE_HOME:-$home/.cache}/berth-cgv2-vm}
mkdir -p "$cache"

# ------------------------------------------------------------------------------------------- kernel (cached) ---
# Modules the guest loads at boot (their dependencies are added automatically). rdma_rxe is Soft-RoCE: it gives
# tests an RDMA device for the rdma controller (an rxe link on a veth, made over RDMA netlink); an rxe device needs
# the "crc32" crypto hash, which the kernel would otherwise ask modprobe for (the guest has none).
want_mods="virtio_pci virtio_console virtio_blk 9pnet_virtio 9p overlay veth rdma_rxe crc32_generic"

# Which kernel: the package linux-image-amd64 currently depends on (local apt metadata, no network).
kpkg_of() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}'; }
# (apt-cache takes ~1 s here, so the answer is remembered until the apt lists change.)
lists_stamp=$(ls -l --time-style=+%s /var/lib/apt/lists/ 2>/dev/null | cksum | cut -d' ' -f1)
kpkg=
if read -r stamp pkg 2>/dev/null < "$cache/kernel-choice" && [ "$stamp" = "$lists_stamp" ]; then kpkg=$pkg; fi
if [ -z "$kpkg" ]; then
  kpkg=$(kpkg_of || true)
  if [ -n "$kpkg" ]; then echo "$lists_stamp $kpkg" > "$cache/kernel-choice.$$"; mv -f "$cache/kernel-choice.$$" "$cache/kernel-choice"; fi
fi
if [ -z "$kpkg" ]; then
  if [ -e "$cache/latest/ok" ]; then kpkg=$(readlink "$cache/latest")
  else as_root apt-get update -q >&2 || true; kpkg=$(kpkg_of || true); fi
fi
[ -n "$kpkg" ] || fail "cannot tell which package linux-image-amd64 depends on (run apt-get update)"
kdir=$cache/$kpkg

build_kernel_cache() {
  local x=$tmp/kx deb vmlinuz kver mroot name f off
  mkdir -p "$x"
  echo "$me: fetching $kpkg with apt-get (once; cached in $kdir)" >&2
  if ! (cd "$x" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >"$x/apt.log" 2>&1); then
    if [ -e "$cache/latest/ok" ]; then   # offline, say: an older cached kernel will do
      echo "$me: warning: apt-get download $kpkg failed; using the cached $(readlink "$cache/latest")" >&2
      kdir=$cache/$(readlink "$cache/latest"); rm -rf "$x"; return 0
    fi
    cat "$x/apt.log" >&2; fail "apt-get download $kpkg failed"
  fi
  deb=$(echo "$x"/*.deb)
  [ -f "$deb" ] || fail "apt-get download left no .deb"
  dpkg-deb -x "$deb" "$x/root" || fail "dpkg-deb -x $deb failed"
  rm -f "$deb"
  vmlinuz=$(echo "$x"/root/boot/vmlinuz-*)
  [ -f "$vmlinuz" ] || fail "no /boot/vmlinuz-* in $kpkg"
  kver=${vmlinuz##*/vmlinuz-}
  for mroot in "$x/root/lib/modules/$kver" "$x/root/usr/lib/modules/$kver"; do [ -d "$mroot" ] && break; done
  [ -d "$mroot" ] || fail "no modules directory for $kver in $kpkg"

  rm -rf "$kdir.tmp"; mkdir -p "$kdir.tmp/modules"
  cp "$vmlinuz" "$kdir.tmp/vmlinuz"
  # The bzImage is XZ-compressed; decompressing it under TCG costs seconds per boot. Keep the uncompressed ELF
  # vmlinux as well (it has a PVH entry note, which QEMU's -kernel can boot directly).
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1 || true)
  if [ -n "$off" ]; then
    tail -c +$((off + 1)) "$vmlinuz" | xz -dcq > "$kdir.tmp/vmlinux" 2>/dev/null || true   # trailing bytes: xz complains
    head -c 4 "$kdir.tmp/vmlinux" | grep -q ELF || rm -f "$kdir.tmp/vmlinux"
  fi

  # Copy the wanted modules, dependencies first, uncompressed (busybox insmod cannot decompress).
  declare -A where=() done_=()
  while IFS= read -r f; do name=${f##*/}; name=${name%%.ko*}; where[${name//-/_}]=$f; done \
    < <(find "$mroot/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
  add_module() {
    local m=${1//-/_} src dst dep
    [ -z "${done_[$m]:-}" ] || return 0
    done_[$m]=1
    src=${where[$m]:-}
    if [ -z "$src" ]; then
      grep -q "/${m//_/[-_]}\.ko" "$mroot/modules.builtin" 2>/dev/null || echo "$me: warning: no module $m in $kpkg" >&2
      return 0
    fi
    dst=$kdir.tmp/modules/$m.ko
    case $src in
      *.xz) xz -dc "$src" > "$dst" ;;
      *.zst) zstd -qdc "$src" > "$dst" || fail "zstd needed to unpack $src" ;;
      *.gz) gzip -dc "$src" > "$dst" ;;
      *) cp "$src" "$dst" ;;
    esac
    for dep in $(tr '\0' '\n' < "$dst" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dep"; done
    echo "$m" >> "$kdir.tmp/modules/load-order"
  }
  : > "$kdir.tmp/modules/load-order"
  for name in $want_mods; do add_module "$name"; done
  echo "$want_mods" > "$kdir.tmp/modules/wanted"
  echo "$kver" > "$kdir.tmp/release"
  rm -rf "$kdir" "$x"; mv "$kdir.tmp" "$kdir"
  : > "$kdir/ok"
  # keep this kernel and the one before it (a concurrent run may be about to boot that one)
  local prev; prev=$(readlink "$cache/latest" 2>/dev/null || true)
  for f in "$cache"/linux-image-*; do
    case ${f##*/} in "$kpkg"|"$prev") ;; *) rm -rf "$f" ;; esac
  done
  ln -sfn "$kpkg" "$cache/latest"
}

exec 9>"$cache/.lock"
flock 9   # serialise cache building between concurrent runs
if [ ! -e "$kdir/ok" ] || [ "$(cat "$kdir/modules/wanted" 2>/dev/null)" != "$want_mods" ]; then build_kernel_cache; fi
kernel=$kdir/vmlinux; [ -f "$kernel" ] || kernel=$kdir/vmlinuz

# ------------------------------------------------------------------------------------------- initramfs ---------
# put_file ROOT PATH: copy PATH (a file: followed through symlinks; a directory: recursively) to ROOT/PATH, and
# for a dynamically linked ELF file also the libraries and loader that ldd names.
put_file() {
  local root=$1 p=$2 lib
  if [ -d "$p" ]; then mkdir -p "$root$p"; cp -a "$p/." "$root$p/"; return 0; fi
  [ -e "$root$p" ] && return 0
  mkdir -p "$root${p%/*}"; cp -L "$p" "$root$p"
  if [ "$(head -c 4 "$p" | tr -d '\0')" = $'\x7fELF' ] && ldd "$p" >/dev/null 2>&1; then
    for lib in $(ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
      put_file "$root" "$lib"
    done
  fi
}

# The base image depends on this script, busybox, bash and the kernel's modules; rebuild when any changes.
base_key=$(cat "$0" "$busybox" /bin/bash "$kdir/modules/load-order" | cksum | cut -d' ' -f1)
base=$kdir/base-$base_key.cpio
if [ ! -f "$base" ]; then
  r=$tmp/base
  mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib,proc,sys,dev,tmp,run,root,etc,mnt,newroot,berth/modules}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib "$r/lib64"
  put_file "$r" /bin/bash
  cp "$busybox" "$r/usr/bin/busybox"
  for a in $("$busybox" --list-full); do      # bin/sh, sbin/ip, usr/bin/awk, ...: all go to usr/
    a=usr/${a#usr/}
    [ -e "$r/$a" ] || ln -s /usr/bin/busybox "$r/$a"
  done
  # sh is bash: busybox's ash would run its own applets even where PATH holds a real program (--add)
  ln -sfn bash "$r/usr/bin/sh"
  # libraries a host-built (non-static) Rust test binary usually needs beyond libc
  for l in libgcc_s.so.1 libm.so.6; do
    for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu; do [ -e "$d/$l" ] && { put_file "$r" "$d/$l"; break; }; done
  done
  cp "$kdir"/modules/*.ko "$kdir/modules/load-order" "$r/berth/modules/"
  printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$r/etc/group"
  printf '127.0.0.1 localhost berth-vm\n::1 localhost\n' > "$r/etc/hosts"
  ln -s /proc/self/mounts "$r/etc/mtab"

  # Stage 1, PID 1 on the initramfs: load modules, copy the initramfs onto a tmpfs and switch_root there.
  # (pivot_root(2) refuses to move the initramfs root, and container runtimes need pivot_root.)
  cat > "$r/init" <<'EOF'
#!/bin/busybox sh
export PATH=/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "BERTH_VM_INIT $(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
for m in $(cat /berth/modules/load-order); do
  insmod /berth/modules/$m.ko || echo "berth-vm: insmod $m failed" > /dev/ttyS0
done
mount -t tmpfs -o mode=755 root /newroot
for e in /*; do
  case $e in /proc|/sys|/dev|/newroot|/init) ;; *) cp -a "$e" /newroot/ ;; esac
done
rm -rf /newroot/berth/modules
for m in proc sys dev; do mkdir -p /newroot/$m; mount --move /$m /newroot/$m; done
exec switch_root /newroot /berth/stage2
EOF
  # Stage 2, PID 1 on the tmpfs root: the rest of the mounts, cgroup v2, the shared directory, the command.
  cat > "$r/berth/stage2" <<'EOF'
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb BERTH_CGV2_VM=1
say() { echo "$*" > /dev/ttyS0; }
finish() { # finish CODE: report CODE on the status port and power off
  [ -n "${status_port:-}" ] && echo "$1" > "$status_port"
  say "BERTH_VM_EXIT $1 $(cut -d' ' -f1 /proc/uptime)"
  sync; poweroff -f; echo o > /proc/sysrq-trigger; sleep 60
}
port() { # the /dev node of the virtio serial port named $1
  local n; for n in /sys/class/virtio-ports/*; do [ "$(cat "$n/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${n##*/}"; return; }; done
}
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -sfn pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin; ln -sfn /proc/self/fd/1 /dev/stdout; ln -sfn /proc/self/fd/2 /dev/stderr
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup 2>/dev/null ||
  mount -t cgroup2 cgroup2 /sys/fs/cgroup || { say "berth-vm: cannot mount cgroup2"; finish 125; }
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || say "berth-vm: cannot enable controller $c"
done
# iocost on vda, so that a per-device io.weight takes there (the kernel refuses one where iocost is off, as on vdb)
if [ -e /sys/fs/cgroup/io.cost.qos ] && [ -e /sys/block/vda/dev ]; then
  echo "$(cat /sys/block/vda/dev) enable=1" > /sys/fs/cgroup/io.cost.qos || say "berth-vm: cannot enable iocost on vda"
fi
hostname berth-vm
ip link set lo up
status_port=$(port berth.status)
out_port=$(port berth.stdout) err_port=$(port berth.stderr)
[ -n "$status_port" ] && [ -n "$out_port" ] && [ -n "$err_port" ] || { say "berth-vm: virtio ports missing"; finish 125; }
. /berth/run.conf     # SHARE_DIR, CMD (an array)
mkdir -p "$SHARE_DIR"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=client berth_share "$SHARE_DIR" ||
  { say "berth-vm: cannot mount the shared directory on $SHARE_DIR"; finish 125; }
cd "$SHARE_DIR"
say "BERTH_VM_READY $(cut -d' ' -f1 /proc/uptime)"
"${CMD[@]}" </dev/null >"$out_port" 2>"$err_port"
finish $?
EOF
  chmod 755 "$r/init" "$r/berth/stage2"
  (cd "$r" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) > "$base.tmp"
  mv "$base.tmp" "$base"
  rm -rf "$r"
  find "$kdir" -maxdepth 1 -name 'base-*.cpio' ! -name "${base##*/}" -delete   # stale images of older versions
fi
exec 9>&-

# The per-run part, appended to the base image (the kernel unpacks concatenated cpio archives in order).
rr=$tmp/run
mkdir -p "$rr/berth"
for a in ${adds[@]+"${adds[@]}"}; do
  [ -e "$a" ] || fail "--add: no such file or directory: $a"
  case $a in /*) abs=$a ;; *) abs=$PWD/$a ;; esac
  abs=$(realpath -ms -- "$abs")            # tidy the name, but keep a symlink's own name
  case $abs/ in //|/proc/*|/sys/*|/dev/*|"$tmp"/*) fail "--add: refusing to add $abs" ;; esac
  case $tmp/ in "$abs"/*) fail "--add: refusing to add $abs (it holds this script's work directory)" ;; esac
  # everything added lives in guest RAM (the initramfs, then a tmpfs copy of it): keep it well below --mem
  add_kb=$(( ${add_kb:-0} + $(du -skD -- "$abs" | cut -f1) ))
  [ "$add_kb" -le $(( mem * 1024 / 4 )) ] || fail "--add: $((add_kb / 1024)) MiB is too much for --mem $mem (limit: a quarter)"
  put_file "$rr" "$abs"
done
{ printf 'SHARE_DIR=%q\nCMD=(' "$dir"; printf '%q ' "$@"; printf ')\n'; } > "$rr/berth/run.conf"
(cd "$rr" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) > "$tmp/run.cpio"
cat "$base" "$tmp/run.cpio" > "$tmp/initrd"
rm -rf "$rr" "$tmp/run.cpio"
# Two empty disks (sparse files: no space used until the guest writes), so the io controller has block devices.
truncate -s "${disk_mb}M" "$tmp/vda.img" "$tmp/vdb.img"

# ------------------------------------------------------------------------------------------- boot --------------
host_id="$(uname -r) $(qemu-system-x86_64 --version | head -n1)"
kvm_usable() {
  [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
  ! grep -qxF "$host_id" "$cache/kvm-failed" 2>/dev/null
}
# If this script is killed outright (no chance to clean up), the kernel kills QEMU too.
pdeath=(); if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then pdeath=(setpriv --pdeathsig KILL --); fi
qarg() { printf '%s' "${1//,/,,}"; }   # QEMU option values escape commas by doubling them

# boot ACCEL BOOT_LIMIT: run the VM; returns 3 if the guest's init did not start within BOOT_LIMIT s (0: no limit)
boot() {
  local acc=$1 limit=$2 t0 elapsed started=0 sm=passthrough cpu=max accel_opt=$1
  if [ "$acc" = kvm ]; then cpu=host; else accel_opt=tcg,thread=multi; fi
  [ "$(id -u)" = 0 ] || sm=none
  rm -f "$tmp/console" "$tmp/status" "$tmp/out" "$tmp/err"
  : > "$tmp/console"; : > "$tmp/status"
  mkfifo "$tmp/out" "$tmp/err"
  cat "$tmp/out" & reader_pids=($!)
  cat "$tmp/err" >&2 & reader_pids+=($!)
  # shellcheck disable=SC2054  # the commas are QEMU's
  local args=(
    -nodefaults -no-user-config -display none -monitor none -no-reboot
    -machine pc -accel "$accel_opt" -cpu "$cpu" -smp "$cpus" -m "$mem"
    -kernel "$kernel" -initrd "$tmp/initrd"
    -append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init mitigations=off random.trust_cpu=on"
    -serial "file:$(qarg "$tmp/console")"
    -device virtio-serial-pci
    -chardev "file,id=out,path=$(qarg "$tmp/out")" -device virtserialport,chardev=out,name=berth.stdout
    -chardev "file,id=err,path=$(qarg "$tmp/err")" -device virtserialport,chardev=err,name=berth.stderr
    -chardev "file,id=st,path=$(qarg "$tmp/status")" -device virtserialport,chardev=st,name=berth.status
    -fsdev "local,id=share,path=$(qarg "$dir"),security_model=$sm"
    -device virtio-9p-pci,fsdev=share,mount_tag=berth_share
    -drive "file=$(qarg "$tmp/vda.img"),if=none,id=vda,format=raw,cache=unsafe" -device virtio-blk-pci,drive=vda
    -drive "file=$(qarg "$tmp/vdb.img"),if=none,id=vdb,format=raw,cache=unsafe" -device virtio-blk-pci,drive=vdb
  )
  note "booting: accel=$acc cpus=$cpus mem=${mem}M kernel=$kernel dir=$dir"
  t0=$(now_ms)
  [ -n "$t_vm" ] || t_vm=$t0    # --timeout counts from the first QEMU start
  ${pdeath[@]+"${pdeath[@]}"} qemu-system-x86_64 "${args[@]}" </dev/null >"$tmp/qemu.log" 2>&1 &
  qemu_pid=$!
  disown "$qemu_pid"   # no "Aborted" job notice from bash when QEMU dies of a signal (it does, if KVM is unusable)
  while kill -0 "$qemu_pid" 2>/dev/null; do
    sleep 0.1
    elapsed=$(( $(now_ms) - t0 ))
    if [ $started = 0 ] && grep -q BERTH_VM_INIT "$tmp/console"; then
      started=1; note "guest init started after ${elapsed} ms ($acc)"
    fi
    if [ $started = 0 ] && [ "$limit" -gt 0 ] && [ "$elapsed" -ge $((limit * 1000)) ]; then
      stop_qemu; unblock_readers; return 3
    fi
    if [ "$timeout" -gt 0 ] && [ $(( $(now_ms) - t_vm )) -ge $((timeout * 1000)) ]; then
      echo "$me: timed out after ${timeout}s; killing the VM" >&2
      stop_qemu; unblock_readers; exit 124
    fi
  done
  qemu_pid=
  unblock_readers
  vm_ms=$(( $(now_ms) - t0 ))
  note "VM ran for $vm_ms ms ($acc)"
  if [ $started = 0 ] && [ "$limit" -gt 0 ]; then return 3; fi   # e.g. QEMU refused -accel kvm outright
  return 0
}

used=
if [ "$accel" = kvm ] || { [ "$accel" = auto ] && kvm_usable; }; then
  if boot kvm "${BERTH_VM_KVM_BOOT_TIMEOUT:-10}"; then
    used=kvm
  elif [ "$accel" = kvm ]; then
    cat "$tmp/qemu.log" >&2; fail "KVM did not boot the guest"
  else
    echo "$me: KVM did not boot the guest; using TCG (remembered in $cache/kvm-failed)" >&2
    if [ "$verbose" = 1 ]; then cat "$tmp/qemu.log" >&2; fi
    echo "$host_id" >> "$cache/kvm-failed"
  fi
fi
if [ -z "$used" ]; then boot tcg 0; used=tcg; fi

if [ "$verbose" = 1 ]; then
  { echo "----- guest console ($used) -----"; tr -d '\r' < "$tmp/console"; echo "----- total $(( $(now_ms) - t_start )) ms -----"; } >&2
fi
rc=$(tr -dc '0-9' < "$tmp/status")
if [ -z "$rc" ]; then
  echo "$me: the VM ($used) stopped after $vm_ms ms without reporting COMMAND's exit status" >&2
  if [ -s "$tmp/qemu.log" ]; then echo "--- QEMU output:" >&2; cat "$tmp/qemu.log" >&2; fi
  if [ -s "$tmp/console" ]; then echo "--- guest console (tail):" >&2; tr -d '\r' < "$tmp/console" | tail -n 40 >&2
  else echo "--- the guest console is empty (kernel died early, e.g. too little --mem for kernel + initramfs)" >&2; fi
  exit 125
fi
exit "$rc"
