//! Mount propagation: the root's (linux.rootfsPropagation) before the mounts and after pivot_root, and one
//! mount's own (its `shared`/`slave`/`private`/`unbindable` options) set through its descriptor.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::{mountinfo, sys, Error};
use crate::config::Linux;

/// Before the container's mounts: `/` becomes a slave (or what the config asks), and a shared mount holding the
/// rootfs a slave.
pub(super) fn before_mounts(linux: &Linux, rootfs: &Path) -> Result<(), Error> {
    let prop = linux.rootfs_propagation;
    // No mount event of ours may reach the host: everything becomes a slave, or what the config asks. An
    // unbindable / would forbid the rootfs bind below, so that one waits until after pivot_root.
    let before = if prop.contains(MsFlags::MS_UNBINDABLE) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        prop
    };
    mount(None::<&str>, "/", None::<&str>, before, None::<&str>)
        .map_err(sys(format!("make / {before:?}")))?;
    // A shared mount holding the rootfs would carry the rootfs bind (and everything mounted below it) to
    // the host, and makes pivot_root fail: make it a slave (it still receives the host's mounts).
    // (After a recursive slave or private change nothing is shared: skip reading mountinfo then.)
    let none_shared = before.contains(MsFlags::MS_REC)
        && (before.contains(MsFlags::MS_SLAVE) || before.contains(MsFlags::MS_PRIVATE));
    let holder = (!none_shared)
        .then(|| mountinfo::mount_point_of(rootfs))
        .flatten();
    if let Some(parent) = holder.filter(|m| m.shared) {
        mount(
            None::<&str>,
            &parent.mount_point,
            None::<&str>,
            MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(sys(format!(
            "make {} (holding the rootfs) a slave",
            parent.mount_point.display()
        )))?;
    }
    Ok(())
}

/// After pivot_root: the configured propagation on the container's `/` itself.
pub(super) fn after_pivot(linux: &Linux) -> Result<(), Error> {
    // Only / itself: the recursive part was applied before the mounts, which have their own propagation.
    let prop = linux.rootfs_propagation - MsFlags::MS_REC;
    mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .map_err(sys(format!("make the container's / {prop:?}")))?;
    Ok(())
}

/// A propagation change (MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, with MS_REC for the whole tree) on the
/// mount `fd` is the root of.
pub(super) fn set_propagation(fd: std::os::fd::BorrowedFd<'_>, p: MsFlags) -> nix::Result<()> {
    let attr = crate::sys::MountAttr {
        propagation: (p - MsFlags::MS_REC).bits(),
        ..Default::default()
    };
    crate::sys::mount_setattr(fd, p.contains(MsFlags::MS_REC), &attr)
}
