//! /dev inside the container: the default devices, `linux.devices`, and the standard links.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use crate::config::Linux;
use crate::resolve::{fd_path, Root};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("device {path}: {what}: {source}")]
    Sys {
        path: PathBuf,
        what: &'static str,
        source: nix::Error,
    },
    #[error("device {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Resolve(#[from] crate::resolve::Error),
}

/// A device node to create: path in the container, kind, numbers, mode and owner (a `linux.devices` entry is one,
/// checked at load).
pub use crate::config::Device as Node;

/// The devices every container gets (the runtime spec's list), 0666 root:root.
pub fn default_nodes() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: PathBuf::from("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Creates every device and link in the container's /dev (before pivot_root; `root` is the rootfs).
pub fn populate(root: &Root, linux: &Linux, in_user_ns: bool) -> Result<(), Error> {
    let mut nodes = default_nodes();
    for n in &linux.devices {
        nodes.retain(|o| o.path != n.path);
        nodes.push(n.clone());
    }
    for n in &nodes {
        if in_user_ns {
            bind_host_device(root, n)?;
        } else {
            make_node(root, n)?;
        }
    }
    let dev = root.mkdir_all(Path::new("/dev"), 0o755)?;
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ] {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(source) => {
                return Err(Error::Sys {
                    path: PathBuf::from("/dev").join(name),
                    what: "symlink",
                    source,
                })
            }
        }
    }
    for d in ["/dev/pts", "/dev/shm"] {
        root.mkdir_all(Path::new(d), 0o755)?;
    }
    Ok(())
}

/// /dev/pts as a new devpts instance (when the config mounts none): ptys of the container's own, with the tty
/// group when it exists in the container's user namespace.
pub fn mount_devpts(root: &Root) -> Result<(), Error> {
    let target = root.mkdir_all(Path::new("/dev/pts"), 0o755)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let mut res = Err(nix::errno::Errno::EINVAL);
    for data in [
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
        "newinstance,ptmxmode=0666,mode=0620",
    ] {
        res = super::mounts::new_filesystem("devpts", Path::new("devpts"), flags, data);
        if !matches!(res, Err(nix::errno::Errno::EINVAL)) {
            break;
        }
    }
    res.and_then(|pts| crate::sys::move_mount_fd(pts.as_fd(), target.as_fd()))
        .map_err(|source| Error::Sys {
            path: "/dev/pts".into(),
            what: "mount devpts",
            source,
        })
}

fn make_node(root: &Root, n: &Node) -> Result<(), Error> {
    let parent = root.mkdir_all(n.path.parent().unwrap_or(Path::new("/dev")), 0o755)?;
    let name = n.path.file_name().unwrap_or_default();
    let sys = |what| {
        let path = n.path.clone();
        move |source| Error::Sys { path, what, source }
    };
    // An existing file there (e.g. from the image) is replaced.
    let _ = nix::unistd::unlinkat(
        Some(parent.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    mknodat(
        Some(parent.as_raw_fd()),
        name,
        n.kind,
        Mode::from_bits_truncate(n.mode),
        makedev(n.major, n.minor),
    )
    .map_err(sys("mknod"))?;
    // mknod obeys the umask; chmod to the exact mode.
    nix::sys::stat::fchmodat(
        Some(parent.as_raw_fd()),
        name,
        Mode::from_bits_truncate(n.mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == nix::errno::Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .map_err(sys("chmod"))?;
    fchownat(
        Some(parent.as_raw_fd()),
        name,
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(sys("chown"))
}

/// In a user namespace mknod is not allowed: bind the host's device node instead.
fn bind_host_device(root: &Root, n: &Node) -> Result<(), Error> {
    let target = root.touch(&n.path)?;
    let src = super::mounts::cstr(&n.path).map_err(|reason| Error::Invalid {
        path: n.path.clone(),
        reason,
    })?;
    crate::sys::open_tree_clone(&src, false)
        .and_then(|node| crate::sys::move_mount_fd(node.as_fd(), target.as_fd()))
        .map_err(|source| Error::Sys {
            path: n.path.clone(),
            what: "bind from host",
            source,
        })
}

/// Opens the container's /dev/null and checks it really is the null device (1:3), so masking cannot be redirected
/// to another file by a container that replaced it.
pub fn open_verified_null() -> Result<OwnedFd, Error> {
    let path = Path::new("/dev/null");
    let root = Root::open(Path::new("/"))?;
    let fd = root.open_in_root(path, OFlag::O_NOFOLLOW)?;
    let meta = std::fs::metadata(fd_path(fd.as_fd())).map_err(|e| Error::Invalid {
        path: path.into(),
        reason: e.to_string(),
    })?;
    use std::os::unix::fs::MetadataExt;
    if !meta.file_type().is_char_device() || meta.rdev() != makedev(1, 3) {
        return Err(Error::Invalid {
            path: path.into(),
            reason: "is not the null device (1:3)".into(),
        });
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_list() {
        let names: Vec<_> = default_nodes()
            .iter()
            .map(|n| n.path.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
    }
}
