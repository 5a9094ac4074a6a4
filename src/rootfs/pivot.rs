//! Making the rootfs the container's `/`: the rootfs bind, pivot_root (or MS_MOVE + chroot, or a plain chroot),
//! and the read-only root at the end.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{mountinfo, sys, Error};
use crate::config::Config;

/// Binds the rootfs onto itself, recursively: pivot_root needs the new root to be a mount point.
pub(super) fn bind_rootfs(rootfs: &Path) -> Result<(), Error> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| Error::Mount {
        src: rootfs.display().to_string(),
        dest: rootfs.to_path_buf(),
        fstype: "bind".into(),
        errno: source,
    })
}

/// Makes the rootfs the container's `/`: pivot_root, or with --no-pivot MS_MOVE + chroot, or without a mount
/// namespace of its own a plain chroot (the mounts stay in berth's namespace, under the rootfs).
pub fn enter_root(config: &Config, rootfs: &Path, no_pivot: bool) -> Result<(), Error> {
    if !config.namespaces.mount {
        chroot_into(rootfs)
    } else if no_pivot {
        move_root(rootfs)
    } else {
        pivot(rootfs)
    }
}

fn chroot_into(rootfs: &Path) -> Result<(), Error> {
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    nix::unistd::chroot(".").map_err(sys(format!("chroot {}", rootfs.display())))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// --no-pivot: move the rootfs over / and chroot (for hosts whose root is a ramdisk, where pivot_root fails).
///
/// The host's mounts stay in the container's mount namespace, out of sight but not out of the kernel's: a full
/// procfs or sysfs mount among them would let the container mount a bare /proc or /sys of its own (in a user
/// namespace, the kernel allows that only where a full one is already visible). So, as runc, every full procfs and
/// sysfs mount outside the rootfs is detached first (covered with a tmpfs where it cannot be).
fn move_root(rootfs: &Path) -> Result<(), Error> {
    let real = rootfs
        .canonicalize()
        .unwrap_or_else(|_| rootfs.to_path_buf());
    let full = mountinfo::full_proc_and_sys_mounts().map_err(|e| Error::Io {
        dest: "/".into(),
        what: "read /proc/self/mountinfo".into(),
        source: e,
    })?;
    for p in full.iter().filter(|p| !p.starts_with(&real)) {
        // Slave first, so that the detach cannot propagate to the host.
        match mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // A parent already detached took it along.
            Err(nix::errno::Errno::ENOENT) => continue,
            other => other.map_err(sys(format!("make {} a slave", p.display())))?,
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(sys(format!("cover {}", p.display())))?,
            other => other.map_err(sys(format!("detach {}", p.display())))?,
        }
    }
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(sys("move rootfs to /"))?;
    nix::unistd::chroot(".").map_err(sys("chroot ."))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// pivot_root into the rootfs and detach the old root. The pivot_root(".", ".") form needs no directory for the
/// old root inside the container.
fn pivot(rootfs: &Path) -> Result<(), Error> {
    let old_root = crate::sys::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("open the old root"))?;
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    nix::unistd::pivot_root(".", ".").map_err(sys(format!("pivot_root {}", rootfs.display())))?;
    // The old root is now stacked on the new one. Make its tree (and only its tree: "." would name the new root
    // and undo the container's own propagation) a slave, so that detaching it cannot propagate to the host.
    nix::unistd::fchdir(old_root.as_raw_fd()).map_err(sys("fchdir to the old root"))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("make old root rslave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach old root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// root.readonly, last: a read-only bind remount of the container's `/`, keeping the flags `/` already has (as
/// runc): a bind remount sets them all, so leaving them out would drop a rootfs's nosuid or nodev, and in a user
/// namespace, where the kernel locks them on mounts from the host, fail with EPERM.
pub(super) fn remount_root_readonly() -> Result<(), Error> {
    let root = crate::sys::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("open /"))?;
    let keep = super::mounts::mount_flags_of(&root);
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        keep | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(sys("remount / read-only"))
}
