//! Writes to procfs files (sysctls, oom_score_adj, LSM attributes) that a container cannot redirect: the file is
//! opened beneath a /proc that is checked to be the root of a procfs mount, without following any symlink and
//! without crossing any mount (so neither a symlink swapped in nor a bind mount over the file — the
//! CVE-2025-52881 class — can send berth's write elsewhere), and is checked again to be on procfs after opening.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// The inode number of every procfs root (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("{0}: not the root of a procfs mount")]
    NotProcRoot(PathBuf),
    #[error("{0}: not a procfs file")]
    NotProcfs(PathBuf),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A verified handle on a procfs mount.
pub struct Proc {
    fd: OwnedFd,
    path: PathBuf,
}

fn is_procfs(fd: std::os::fd::BorrowedFd<'_>) -> nix::Result<bool> {
    Ok(crate::sys::fs_magic(fd)? == libc::PROC_SUPER_MAGIC)
}

impl Proc {
    /// Opens `path` (normally /proc) and checks that it is the root of a procfs mount.
    pub fn open(path: &Path) -> Result<Proc, Error> {
        let sys = |op| {
            let path = path.to_path_buf();
            move |source| Error::Sys { op, path, source }
        };
        let fd = crate::sys::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open"))?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys("fstat"))?;
        if !is_procfs(fd.as_fd()).map_err(sys("fstatfs"))? || st.st_ino != PROC_ROOT_INO {
            return Err(Error::NotProcRoot(path.to_path_buf()));
        }
        Ok(Proc {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Writes `value` to `rel` (e.g. "sys/net/ipv4/ip_forward", "<pid>/oom_score_adj") under this procfs.
    pub fn write(&self, rel: &str, value: &str) -> Result<(), Error> {
        let path = self.path.join(rel);
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let fd = crate::sys::openat2(self.fd.as_fd(), rel, how).map_err(|source| Error::Sys {
            op: "open",
            path: path.clone(),
            source,
        })?;
        if !is_procfs(fd.as_fd()).map_err(|source| Error::Sys {
            op: "fstatfs",
            path: path.clone(),
            source,
        })? {
            return Err(Error::NotProcfs(path));
        }
        std::fs::File::from(fd)
            .write_all(value.as_bytes())
            .map_err(|source| Error::Write { path, source })
    }

    /// Is `rel` present under this procfs (as a file berth could write)?
    pub fn exists(&self, rel: &str) -> bool {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
        crate::sys::openat2(self.fd.as_fd(), rel, how).is_ok()
    }
}

/// Sets a process's oom_score_adj through the host's verified /proc (in `create`, for the init it just cloned).
pub fn write_oom_score_adj(pid: i32, score: i32) -> Result<(), Error> {
    Proc::open(Path::new("/proc"))?.write(&format!("{pid}/oom_score_adj"), &score.to_string())
}

/// The procfs directory of the calling process, as seen by the procfs mounted for its pid namespace.
pub fn self_dir() -> String {
    nix::unistd::getpid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_procfs_root_is_accepted() {
        assert!(Proc::open(Path::new("/proc")).is_ok());
        assert!(matches!(
            Proc::open(Path::new("/proc/1")),
            Err(Error::NotProcRoot(_))
        ));
        assert!(Proc::open(Path::new("/proc/self")).is_err());
        assert!(matches!(
            Proc::open(Path::new("/tmp")),
            Err(Error::NotProcRoot(_))
        ));
    }

    #[test]
    fn writes_follow_no_symlink_and_stay_beneath() {
        let proc = Proc::open(Path::new("/proc")).unwrap();
        // "self" is a symlink: refused, even though it would lead to a procfs file.
        let err = proc.write("self/comm", "x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Sys {
                    source: nix::errno::Errno::ELOOP,
                    ..
                }
            ),
            "{err}"
        );
        let err = proc.write("../etc/hostname", "x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Sys {
                    source: nix::errno::Errno::EXDEV,
                    ..
                }
            ),
            "{err}"
        );
        // The same file by its real name works (writing our own comm is harmless; restore it after).
        let me = self_dir();
        let old = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        proc.write(&format!("{me}/comm"), "berth-procfs").unwrap();
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap(),
            "berth-procfs\n"
        );
        proc.write(&format!("{me}/comm"), old.trim_end()).unwrap();
    }
}
