#!/usr/bin/env bash
# run-in-vm.sh - run a command in a throw-away QEMU VM whose PID 1 is systemd (Debian bookworm, dbus up).
#
# usage: run-in-vm.sh [--cgroup v2|hybrid] [--mem MB] [--timeout SEC] DIR -- COMMAND [ARG...]
#
#   --cgroup M     v2 (default): systemd.unified_cgroup_hierarchy=1; hybrid: =0 (v1 controllers, systemd's
#                  cgroup2 at /sys/fs/cgroup/unified)
#   --mem MB       guest RAM (default 1024)
#   --timeout SEC  kill the VM after SEC seconds and exit 124 (default 1800; 0 = never)
#
# Host DIR is shared read-write over virtio-9p at the same absolute path; COMMAND runs as root with cwd = DIR in
# berth-vm-run.service (Type=exec, Delegate=yes, like containerd.service) once multi-user.target is reached;
# stdin is /dev/null, stdout/stderr stream to ours. BERTH_SYSTEMD_VM=1 is set. Exit status: COMMAND's; 124 on
# timeout; 125 when the VM itself failed (console tail on stderr).
#
# Root filesystem: an ext4 image built once with mmdebstrap from apt (systemd, dbus, containerd, jq,
# busybox-static, podman with crun and conmon), cached in ${BERTH_SDVM_CACHE:-~/.cache/berth-systemd-vm} and
# booted copy-on-write (snapshot=on): every run starts clean. Kernel: the package linux-image-amd64 depends on (apt-get download), cached there too.
# Missing host tools are installed with apt-get. BERTH_VM_ACCEL=auto|kvm|tcg (auto: KVM unless this host's
# /dev/kvm is PVM, which boots no stock kernel), BERTH_VM_VERBOSE=1 prints the guest console afterwards.
set -euo pipefail

me=run-in-vm.sh
die() { echo "$me: $*" >&2; exit 125; }
note() { if [ "$verbose" = 1 ]; then echo "$me: $*" >&2; fi; }

mem=1024 timeout_s=1800 cgmode=v2 verbose=${BERTH_VM_VERBOSE:-0} accel=${BERTH_VM_ACCEL:-auto}
while [ $# -gt 0 ]; do
  case $1 in
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --cgroup) cgmode=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set/d; s/^# \{0,1\}//; p}' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] && [ "$2" = -- ] || { sed -n 4p "$0" | sed 's/^# //' >&2; exit 125; }
dir=$(cd "$1" 2>/dev/null && pwd -P) || die "not a directory: $1"
shift 2
case $dir/ in /|/bin/*|/sbin/*|/lib/*|/lib64/*|/usr/*|/etc/*|/proc/*|/sys/*|/dev/*|/run/*|/var/*)
  die "DIR $dir would hide the guest's own files" ;; esac
case $cgmode in
  v2) cgargs="systemd.unified_cgroup_hierarchy=1" ;;
  hybrid) cgargs="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0" ;;
  *) die "--cgroup must be v2 or hybrid" ;;
esac
[[ $mem =~ ^[0-9]+$ && $timeout_s =~ ^[0-9]+$ ]] || die "--mem/--timeout take numbers"
cpus=$(n=$(nproc); echo $(( n > 4 ? 4 : n )))

# ------------------------------------------------------------------------------------------- host tools --------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]} (apt-get install them as root)"
  echo "$me: installing ${need[*]} with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
        die "apt-get install ${need[*]} failed"; }
fi
busybox=/bin/busybox

home=${HOME:-/root}
cache=${BERTH_SDVM_CACHE:-${XDG_CACHE_HOME:-$home/.cache}/berth-systemd-vm}
mkdir -p "$cache"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-sdvm.XXXXXX")
qpid='' catpids=()
release_cats() {  # a fifo reader whose writer never came is blocked in open(): give it an EOF, then wait
  local f p
  for f in "$tmp/out" "$tmp/err"; do [ -p "$f" ] && { exec 7<>"$f"; exec 7>&-; }; done
  for p in ${catpids[@]+"${catpids[@]}"}; do wait "$p" 2>/dev/null || true; done
  catpids=()
}
cleanup() {
  if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; fi
  release_cats; rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
exec 8>"$cache/.lock"; flock 8   # one builder of the cache at a time

# ------------------------------------------------------------------------------------------- kernel (cached) ---
# Loaded by stage 1 (with their dependencies): the root disk, the shared dir, what containers need.
modules="virtio_pci virtio_blk crc32c_generic ext4 9pnet_virtio 9p overlay veth bridge br_netfilter"
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1=="Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || kpkg=$(readlink "$cache/kernel" 2>/dev/null || true)
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64's kernel package (apt-get update?)"
kdir=$cache/$kpkg
if [ ! -e "$kdir/ok" ] || [ "$(cat "$kdir/modules-wanted" 2>/dev/null)" != "$modules" ]; then
  x=$tmp/kernel; mkdir -p "$x"
  echo "$me: downloading $kpkg (once; cached in $cache)" >&2
  (cd "$x" && apt-get -q -o APT::Sandbox::User=root download "$kpkg" >"$x/apt.log" 2>&1) ||
    { cat "$x/apt.log" >&2; die "apt-get download $kpkg failed"; }
  dpkg-deb -x "$x"/*.deb "$x/root" || die "dpkg-deb -x failed"
  vmlinuz=$(echo "$x"/root/boot/vmlinuz-*); kver=${vmlinuz##*/vmlinuz-}
  mroot=$x/root/lib/modules/$kver; [ -d "$mroot" ] || mroot=$x/root/usr/lib/modules/$kver
  rm -rf "$kdir.new"; mkdir -p "$kdir.new/mod"
  cp "$vmlinuz" "$kdir.new/vmlinuz"
  # The uncompressed ELF vmlinux boots through PVH, seconds faster under TCG than the XZ bzImage.
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1 || true)
  if [ -n "$off" ]; then
    { tail -c +$((off + 1)) "$vmlinuz" | xz -dcq > "$kdir.new/vmlinux"; } 2>/dev/null || true  # trailing bytes
    head -c 4 "$kdir.new/vmlinux" | grep -q ELF || rm -f "$kdir.new/vmlinux"
  fi
  declare -A where=() seen=()
  while IFS= read -r f; do n=${f##*/}; n=${n%%.ko*}; where[${n//-/_}]=$f; done < <(find "$mroot/kernel" -name '*.ko*')
  add_mod() {
    local m=${1//-/_} src dep
    [ -z "${seen[$m]:-}" ] || return 0
    seen[$m]=1; src=${where[$m]:-}
    [ -n "$src" ] || return 0   # built in
    case $src in *.xz) xz -dc "$src" > "$kdir.new/mod/$m.ko" ;; *) cp "$src" "$kdir.new/mod/$m.ko" ;; esac
    for dep in $(tr '\0' '\n' < "$kdir.new/mod/$m.ko" | sed -n 's/^depends=//p' | tr , ' '); do add_mod "$dep"; done
    echo "$m" >> "$kdir.new/mod/order"
  }
  : > "$kdir.new/mod/order"
  for n in $modules; do add_mod "$n"; done
  echo "$modules" > "$kdir.new/modules-wanted"; : > "$kdir.new/ok"
  rm -rf "$kdir" "$x"; mv "$kdir.new" "$kdir"
  ln -sfn "$kpkg" "$cache/kernel"
fi
kernel=$kdir/vmlinux; [ -f "$kernel" ] || kernel=$kdir/vmlinuz

# ------------------------------------------------------------------------------------------- root image (cached)
suite=bookworm   # systemd 252: the last Debian systemd that still boots hybrid cgroups
packages="systemd,systemd-sysv,dbus,procps,util-linux,containerd,jq,busybox-static,podman,crun"
mirror=$({ sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
           sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' /etc/apt/sources.list 2>/dev/null || true
         } | grep '/debian/\?$' | head -n 1 || true)

# The unit that runs COMMAND once systemd is up.
read -r -d '' run_unit <<'EOF' || true
[Unit]
Description=berth systemd VM: run the command, then power off
Wants=dbus.service
After=multi-user.target dbus.service

[Service]
Type=exec
ExecStart=/usr/local/lib/berth-vm/runner
Delegate=yes
KillMode=process
TimeoutStartSec=infinity
StandardInput=null
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
read -r -d '' runner <<'EOF' || true
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root BERTH_SYSTEMD_VM=1 TERM=dumb LANG=C.UTF-8
say() { echo "$*" > /dev/ttyS0; }
bye() { say "BERTH_VM_EXIT=$1"; sync; poweroff -f; echo o > /proc/sysrq-trigger; }
source /etc/berth-vm/run.conf        # G (guest dir), CMD (quoted)
mkdir -p "$G"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=client berthdir "$G" ||
  { say "berth-vm: 9p mount of $G failed"; bye 125; }
for t in /dev/ttyS1 /dev/ttyS2; do stty -F $t raw -echo -onlcr 2>/dev/null; done
cd "$G"
say "BERTH_VM_READY $(cut -d' ' -f1 /proc/uptime) $(systemctl is-system-running 2>&1)"
mkfifo /run/.vm-out /run/.vm-err
cat /run/.vm-out > /dev/ttyS1 & p1=$!
cat /run/.vm-err > /dev/ttyS2 & p2=$!
( eval "exec $CMD" ) </dev/null >/run/.vm-out 2>/run/.vm-err
rc=$?
wait $p1 $p2 2>/dev/null
bye $rc
EOF

customize_root() {  # customize_root ROOT: a fast, quiet boot straight to the runner
  local r=$1 u
  echo berth-vm > "$r/etc/hostname"
  printf '127.0.0.1 localhost berth-vm\n::1 localhost\n' > "$r/etc/hosts"
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$r/etc/machine-id"; echo >> "$r/etc/machine-id"
  : > "$r/etc/fstab"
  ln -sfn /lib/systemd/system/multi-user.target "$r/etc/systemd/system/default.target"
  for u in getty.target serial-getty@.service getty@.service console-getty.service systemd-tmpfiles-clean.timer \
           apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
           e2scrub_reap.service systemd-pstore.service systemd-firstboot.service systemd-logind.service \
           systemd-sysusers.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
           systemd-modules-load.service modprobe@.service systemd-journal-flush.service containerd.service \
           podman.socket podman.service podman-restart.service podman-auto-update.timer podman-auto-update.service \
           podman-clean-transient.service; do
    ln -sfn /dev/null "$r/etc/systemd/system/$u"
  done
  rm -rf "$r/etc/systemd/system/timers.target.wants" "$r/etc/systemd/system/getty.target.wants"
  mkdir -p "$r/etc/systemd/system/local-fs.target.wants"
  cp "$r/usr/share/systemd/tmp.mount" "$r/etc/systemd/system/tmp.mount"
  ln -sfn ../tmp.mount "$r/etc/systemd/system/local-fs.target.wants/tmp.mount"
  mkdir -p "$r/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$r/etc/systemd/journald.conf.d/berth-vm.conf"
  mkdir -p "$r/usr/local/lib/berth-vm" "$r/etc/berth-vm" "$r/etc/systemd/system/multi-user.target.wants"
  printf '%s\n' "$runner" > "$r/usr/local/lib/berth-vm/runner"; chmod 755 "$r/usr/local/lib/berth-vm/runner"
  printf '%s\n' "$run_unit" > "$r/etc/systemd/system/berth-vm-run.service"
  ln -sfn ../berth-vm-run.service "$r/etc/systemd/system/multi-user.target.wants/berth-vm-run.service"
  rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/lib/apt/lists/"* "$r/var/log/"*.log
}

recipe=$( { echo "$suite $packages $mirror"; printf '%s\n' "$run_unit" "$runner"; declare -f customize_root; } |
          cksum | cut -d' ' -f1)
image=$cache/rootfs-$suite-$recipe.img
if [ ! -f "$image" ]; then
  [ "$(id -u)" = 0 ] || die "building the root filesystem image needs root (once)"
  r=$tmp/root
  echo "$me: building the $suite root filesystem with mmdebstrap (once; cached in $cache)" >&2
  mmdebstrap --variant=minbase --include="$packages" --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$suite" "$r" ${mirror:+"$mirror"} > "$tmp/bootstrap.log" 2>&1 ||
    { tail -30 "$tmp/bootstrap.log" >&2; die "mmdebstrap failed"; }
  customize_root "$r"
  used=$(du -sm "$r" | cut -f1)
  rm -f "$image.tmp"; truncate -s $(( used + 1024 ))M "$image.tmp"   # sparse; writes go to a throw-away overlay
  mkfs.ext4 -q -F -L berth-root -E root_owner=0:0 -d "$r" "$image.tmp" > "$tmp/mkfs.log" 2>&1 ||
    { cat "$tmp/mkfs.log" >&2; die "mkfs.ext4 -d failed"; }
  mv "$image.tmp" "$image"; rm -rf "$r"
  ls -t "$cache"/rootfs-*.img | tail -n +3 | xargs -r rm -f   # keep the newest two
  echo "$me: image ready: $(du -m "$image" | cut -f1) MB on disk" >&2
fi

# ------------------------------------------------------------------------------------------- stage 1 (cached) --
stage1_sum=$( { sed -n '/^# -* stage 1 (cached)/,/^# -* per-run part/p' "$0"; cat "$busybox"; } | cksum | cut -d' ' -f1)
base=$kdir/stage1-$stage1_sum.cpio
if [ ! -f "$base" ]; then
  r=$tmp/base; mkdir -p "$r"/{bin,proc,sys,dev,newroot,mod}
  cp "$busybox" "$r/bin/busybox"; cp "$kdir"/mod/* "$r/mod/"
  # busybox stage 1: modules, mount the image, drop in the per-run settings, hand over to systemd
  cat > "$r/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
con=/dev/ttyS0
echo "BERTH_VM_STAGE1 $(cut -d' ' -f1 /proc/uptime)" > $con
fail() { echo "berth-vm: stage 1: $*" > $con; echo "BERTH_VM_EXIT=125" > $con; poweroff -f; }
for m in $(cat /mod/order); do insmod /mod/$m.ko 2>$con || echo "berth-vm: insmod $m failed" > $con; done
for i in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.05; done
mount -t ext4 -o rw /dev/vda /newroot || fail "cannot mount /dev/vda"
cp /run.conf /newroot/etc/berth-vm/run.conf || fail "cannot copy run.conf"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
EOF
  chmod 755 "$r/init"
  (cd "$r" && find . | cpio -o -H newc --quiet) > "$base.tmp" && mv "$base.tmp" "$base"
  rm -rf "$r"
  ls -t "$kdir"/stage1-*.cpio | tail -n +3 | xargs -r rm -f
fi

# ------------------------------------------------------------------------------------------- per-run part ------
rr=$tmp/run; mkdir -p "$rr"
{ printf 'G=%q\n' "$dir"; printf 'CMD=%q\n' "$(printf '%q ' "$@")"; } > "$rr/run.conf"
(cd "$rr" && find . -mindepth 1 | cpio -o -H newc --quiet) > "$tmp/run.cpio"
cat "$base" "$tmp/run.cpio" > "$tmp/initrd"
exec 8>&-

# ------------------------------------------------------------------------------------------- boot --------------
qesc() { printf '%s' "${1//,/,,}"; }
use_kvm=0
if [ "$accel" = kvm ]; then use_kvm=1
elif [ "$accel" = auto ] && [ -c /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then use_kvm=1; fi
if [ $use_kvm = 1 ]; then acc=(-accel kvm -cpu host); else acc=(-accel tcg,thread=multi -cpu max); fi
sm=passthrough; [ "$(id -u)" = 0 ] || sm=none
mkfifo "$tmp/out" "$tmp/err"; : > "$tmp/console.log"
cat "$tmp/out" & catpids=($!)
cat "$tmp/err" >&2 & catpids+=($!)
note "booting ($cgmode, kvm=$use_kvm): $kernel $image"
t0=$(date +%s)
qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot -monitor none -machine pc "${acc[@]}" \
  -smp "$cpus" -m "$mem" -kernel "$kernel" -initrd "$tmp/initrd" \
  -append "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off rdinit=/init 8250.nr_uarts=4 random.trust_cpu=on $cgargs systemd.show_status=0" \
  -drive "file=$(qesc "$image"),if=virtio,format=raw,snapshot=on,cache=unsafe" \
  -serial "file:$(qesc "$tmp/console.log")" -serial "file:$(qesc "$tmp/out")" -serial "file:$(qesc "$tmp/err")" \
  -fsdev "local,id=fs0,path=$(qesc "$dir"),security_model=$sm" -device virtio-9p-pci,fsdev=fs0,mount_tag=berthdir \
  </dev/null 2>"$tmp/qemu.err" &
qpid=$!
while kill -0 "$qpid" 2>/dev/null; do
  sleep 0.5
  if [ "$timeout_s" -gt 0 ] && [ $(( $(date +%s) - t0 )) -ge "$timeout_s" ]; then
    echo "$me: timed out after ${timeout_s}s; killing the VM" >&2
    [ "$verbose" = 1 ] && tr -d '\r' < "$tmp/console.log" >&2
    kill "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; qpid=
    exit 124
  fi
done
wait "$qpid" 2>/dev/null || true; qpid=
release_cats
note "VM ran $(( $(date +%s) - t0 )) s"
[ "$verbose" = 1 ] && { echo "----- guest console -----" >&2; tr -d '\r' < "$tmp/console.log" >&2; }
exitline=$(grep -a 'BERTH_VM_EXIT=' "$tmp/console.log" | tail -1 | tr -d '\r' || true)
if [ -z "$exitline" ]; then
  echo "$me: the VM ended without reporting an exit status; qemu stderr and console tail:" >&2
  cat "$tmp/qemu.err" >&2; tr -d '\r' < "$tmp/console.log" | tail -40 >&2
  exit 125
fi
rc=${exitline#*BERTH_VM_EXIT=}; rc=${rc%% *}
exit "$rc"
