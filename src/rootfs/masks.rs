//! Masked paths (/dev/null or an empty read-only tmpfs over them) and read-only paths, after pivot_root.

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::MsFlags;

use super::mounts::new_filesystem;
use super::{devices, Error};
use crate::config::Linux;
use crate::resolve::Root;

/// linux.maskedPaths, then linux.readonlyPaths.
pub(super) fn apply(linux: &Linux) -> Result<(), Error> {
    let mut masked = Masked::default();
    for p in &linux.masked_paths {
        masked.mask(p)?;
    }
    for p in &linux.readonly_paths {
        readonly_path(p)?;
    }
    Ok(())
}

fn slash_root() -> Result<Root, Error> {
    Ok(Root::open(Path::new("/"))?)
}

/// `path` opened (O_PATH) inside the container's root, with that root; None when it does not exist.
fn open_existing(path: &Path) -> Result<Option<(Root, OwnedFd)>, Error> {
    let root = slash_root()?;
    match root.open_in_root(path, OFlag::empty()) {
        Ok(fd) => Ok(Some((root, fd))),
        Err(e) if e.source == nix::errno::Errno::ENOENT => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The masks made so far: a path listed twice is masked once, and every masked directory shares the first one's
/// empty tmpfs (a copy of that mount), as runc does.
#[derive(Default)]
struct Masked {
    done: HashSet<PathBuf>,
    tmpfs: Option<OwnedFd>,
}

impl Masked {
    /// Masks a path: /dev/null over a file, an empty read-only tmpfs over a directory. Absent paths are skipped.
    fn mask(&mut self, path: &Path) -> Result<(), Error> {
        if !self.done.insert(path.components().collect()) {
            return Ok(());
        }
        let Some((_, target)) = open_existing(path)? else {
            return Ok(());
        };
        let is_dir = nix::sys::stat::fstat(target.as_raw_fd())
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        let mask = match (is_dir, &self.tmpfs) {
            (true, Some(first)) => crate::sys::open_tree_clone_fd(first.as_fd(), false),
            (true, None) => new_filesystem(
                "tmpfs",
                Path::new("tmpfs"),
                MsFlags::MS_RDONLY,
                "size=0k,nr_inodes=1",
            ),
            (false, _) => {
                let null = devices::open_verified_null()?;
                crate::sys::open_tree_clone_fd(null.as_fd(), false)
            }
        };
        let mounted = mask.and_then(|m| {
            crate::sys::move_mount_fd(m.as_fd(), target.as_fd())?;
            Ok(m)
        });
        match mounted {
            Ok(m) if is_dir && self.tmpfs.is_none() => {
                self.tmpfs = Some(m);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(source) => Err(Error::Mount {
                src: if is_dir { "tmpfs" } else { "/dev/null" }.into(),
                dest: path.to_path_buf(),
                fstype: "mask".into(),
                errno: source,
            }),
        }
    }
}

/// Makes a path read-only: a detached recursive copy of what is there, its top made read-only (as a bind remount,
/// like runc), then moved onto it. Absent paths are skipped.
fn readonly_path(path: &Path) -> Result<(), Error> {
    let Some((_, target)) = open_existing(path)? else {
        return Ok(());
    };
    let attr = crate::sys::MountAttr {
        attr_set: crate::sys::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    crate::sys::open_tree_clone_fd(target.as_fd(), true)
        .and_then(|tree| {
            crate::sys::mount_setattr(tree.as_fd(), false, &attr)?;
            crate::sys::move_mount_fd(tree.as_fd(), target.as_fd())
        })
        .map_err(|source| Error::Mount {
            src: path.display().to_string(),
            dest: path.to_path_buf(),
            fstype: "bind".into(),
            errno: source,
        })
}
