//! `cgroup` mounts: the container's own cgroup directories, never the host's hierarchy.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;

use super::mounts::{cstr, new_filesystem};
use super::{Context, Error};
use crate::config::mount_options as options;
use crate::config::Mount;
use crate::resolve::Root;

/// `cgroup` mounts: cgroup2 where the host is unified, else a tmpfs with the container's directory of each v1
/// hierarchy bound below it (read-only unless the config says rw).
pub(super) fn mount_cgroup(ctx: &Context, root: &Root, m: &Mount) -> Result<(), Error> {
    let opts = &m.options;
    let dest = &m.destination;
    let target = root.mkdir_all(dest, 0o755)?;
    let flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let merr = |fstype: &str| {
        let (dest, fstype) = (dest.clone(), fstype.to_string());
        move |source| Error::Mount {
            src: "cgroup".into(),
            dest,
            fstype,
            errno: source,
        }
    };
    let unified = ctx.cgroup_paths.len() == 1
        && ctx
            .cgroup_paths
            .keys()
            .all(|k| crate::sys::is_cgroup2(Path::new(k)).unwrap_or(false));
    let attach = |mnt: &OwnedFd, onto: &OwnedFd, fstype: &str| {
        crate::sys::move_mount_fd(mnt.as_fd(), onto.as_fd()).map_err(merr(fstype))
    };
    if unified {
        let fs =
            new_filesystem("cgroup2", Path::new("cgroup2"), flags, "").map_err(merr("cgroup2"))?;
        return attach(&fs, &target, "cgroup2");
    }
    // The tmpfs is ours: its subdirectories are made and found through it, not through the destination's path.
    let tmpfs = new_filesystem(
        "tmpfs",
        Path::new("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "mode=755",
    )
    .map_err(merr("tmpfs"))?;
    attach(&tmpfs, &target, "tmpfs")?;
    let (set, clr) = options::mount_attrs(flags);
    let attr = crate::sys::MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    for (mnt, dir) in ctx.cgroup_paths {
        let name = Path::new(mnt).file_name().unwrap_or_default();
        nix::sys::stat::mkdirat(
            Some(tmpfs.as_raw_fd()),
            name,
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .map_err(merr("tmpfs"))?;
        let sub = crate::sys::openat(
            tmpfs.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(merr("tmpfs"))?;
        let c_dir = cstr(dir).map_err(|reason| Error::Invalid {
            dest: dest.clone(),
            reason,
        })?;
        let tree = crate::sys::open_tree_clone(&c_dir, false).map_err(merr("bind"))?;
        crate::sys::mount_setattr(tree.as_fd(), false, &attr).map_err(merr("bind"))?;
        attach(&tree, &sub, "bind")?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let ro = crate::sys::MountAttr {
            attr_set: crate::sys::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        crate::sys::mount_setattr(tmpfs.as_fd(), false, &ro).map_err(merr("tmpfs"))?;
    }
    Ok(())
}
