//! Taking down the mounts of a container without a mount namespace, which were made in berth's own namespace.

use std::path::Path;

use nix::mount::{umount2, MntFlags};

use super::{mountinfo, Error};

/// Takes down every mount at or below `rootfs` in berth's own namespace, deepest first and lazily (for containers
/// without a mount namespace, whose mounts were made there). Returns how many were unmounted.
pub fn unmount_all_under(rootfs: &Path) -> Result<usize, Error> {
    // mountinfo shows real paths (the bundle's rootfs may be reached through a symlink).
    let real = rootfs.canonicalize();
    let rootfs = real.as_deref().unwrap_or(rootfs);
    let mut points = mountinfo::mounts_under(rootfs).map_err(|e| Error::Io {
        dest: rootfs.to_path_buf(),
        what: "read /proc/self/mountinfo".into(),
        source: e,
    })?;
    // Deepest first; among equals, the latest (topmost) first.
    points.reverse();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut n = 0;
    for p in points {
        match umount2(&p, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => n += 1,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(source) => {
                return Err(Error::Sys {
                    what: format!("umount {}", p.display()),
                    source,
                })
            }
        }
    }
    Ok(n)
}
