//! Paths inside the container, resolved inside its rootfs: a symlink anywhere on the way is followed as if the
//! rootfs were `/` (openat2 RESOLVE_IN_ROOT), so no bundle can point berth at a host path.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
#[error("{op} {path} in rootfs {rootfs}: {source}")]
pub struct Error {
    pub op: &'static str,
    pub path: PathBuf,
    pub rootfs: PathBuf,
    pub source: nix::Error,
}

/// An open rootfs directory to resolve container paths against.
pub struct Root {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, Error> {
        let fd = crate::sys::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| Error {
            op: "open",
            path: path.to_path_buf(),
            rootfs: path.to_path_buf(),
            source,
        })?;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
        })
    }

    fn err(&self, op: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> Error {
        let (path, rootfs) = (path.to_path_buf(), self.path.clone());
        move |source| Error {
            op,
            path,
            rootfs,
            source,
        }
    }

    /// Opens `path` (a container path) with O_PATH, never leaving the rootfs.
    pub fn open_in_root(&self, path: &Path, extra: OFlag) -> Result<OwnedFd, Error> {
        let rel = relative(path);
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | extra)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let target: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &rel
        };
        crate::sys::openat2(self.fd.as_fd(), target, how).map_err(self.err("resolve", path))
    }

    /// mkdir -p inside the rootfs, each step resolved in root; returns an O_PATH fd of the final directory. A
    /// dangling symlink on the way is followed inside the root: its target is created there.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd, Error> {
        self.mkdir_all_depth(path, mode, 0)
    }

    fn mkdir_all_depth(&self, path: &Path, mode: u32, depth: u32) -> Result<OwnedFd, Error> {
        // As the kernel's MAXSYMLINKS: a loop of links fails instead of recursing forever.
        if depth > 40 {
            return Err(self.err("mkdir", path)(nix::errno::Errno::ELOOP));
        }
        let mut cur = self.open_in_root(Path::new("/"), OFlag::O_DIRECTORY)?;
        let mut sofar = PathBuf::from("/");
        for comp in relative(path).components() {
            let parent = sofar.clone();
            sofar.push(comp);
            match self.open_in_root(&sofar, OFlag::O_DIRECTORY) {
                Ok(fd) => cur = fd,
                Err(e) if e.source == nix::errno::Errno::ENOENT => {
                    match nix::sys::stat::mkdirat(
                        Some(cur.as_raw_fd()),
                        comp.as_os_str(),
                        Mode::from_bits_truncate(mode),
                    ) {
                        Ok(()) => {}
                        Err(nix::errno::Errno::EEXIST) => {
                            // A dangling symlink (or a racing mkdir): create what it points to, inside the root.
                            if let Ok(target) =
                                nix::fcntl::readlinkat(Some(cur.as_raw_fd()), comp.as_os_str())
                            {
                                let target = parent.join(PathBuf::from(target));
                                self.mkdir_all_depth(&target, mode, depth + 1)?;
                            }
                        }
                        Err(e) => return Err(self.err("mkdir", &sofar)(e)),
                    }
                    cur = self.open_in_root(&sofar, OFlag::O_DIRECTORY)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cur)
    }

    /// Makes sure `path` exists as an empty regular file (the target of a file bind mount). A dangling symlink,
    /// on the way or at the end, is followed inside the root: its target is created there (as runc does).
    pub fn touch(&self, path: &Path) -> Result<OwnedFd, Error> {
        self.touch_depth(path, 0)
    }

    fn touch_depth(&self, path: &Path, depth: u32) -> Result<OwnedFd, Error> {
        if depth > 40 {
            return Err(self.err("create", path)(nix::errno::Errno::ELOOP));
        }
        if let Ok(fd) = self.open_in_root(path, OFlag::empty()) {
            return Ok(fd);
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        let dir = self.mkdir_all(parent, 0o755)?;
        let name = path.file_name().unwrap_or_default();
        if let Ok(target) = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name) {
            let at = Path::new("/").join(self.relative_of(&dir));
            return self.touch_depth(&at.join(PathBuf::from(target)), depth + 1);
        }
        // O_PATH dirs cannot be used for openat with O_CREAT directly on all kernels: reopen via /proc.
        let dirpath = fd_path(dir.as_fd());
        let file = crate::sys::open(
            &dirpath.join(name),
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(self.err("create", path))?;
        drop(file);
        self.open_in_root(path, OFlag::empty())
    }
}

impl Root {
    /// Where an fd (from this root) really is, relative to the root: e.g. `proc` for a destination `/x` that is
    /// a symlink to `/proc`. Empty when it cannot be told.
    pub fn relative_of(&self, fd: &OwnedFd) -> PathBuf {
        let real = |f: std::os::fd::BorrowedFd<'_>| std::fs::read_link(fd_path(f)).ok();
        match (real(self.fd.as_fd()), real(fd.as_fd())) {
            (Some(root), Some(p)) => p
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            _ => PathBuf::new(),
        }
    }
}

/// "/proc/self/fd/N": a path naming exactly the object an fd holds, for mount(2) and friends.
pub fn fd_path(fd: std::os::fd::BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A container path as a path relative to the rootfs, with `.`, `..` and the leading `/` dropped
/// (`..` is resolved by the kernel inside the root; here it can only be lexically above `/`, which clamps).
pub fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_clamps_at_root() {
        assert_eq!(relative(Path::new("/a/b/../c")), PathBuf::from("a/c"));
        assert_eq!(relative(Path::new("/../../etc")), PathBuf::from("etc"));
        assert_eq!(relative(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let base = std::env::temp_dir().join(format!("berth-resolve-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/marker"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("climb")).unwrap();
        let r = Root::open(&root).unwrap();
        for p in ["/link/marker", "/climb/marker"] {
            let fd = r.open_in_root(Path::new(p), OFlag::empty()).unwrap();
            let real = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
            assert_eq!(real, root.join("etc/marker"), "{p}");
        }
        let made = r.mkdir_all(Path::new("/link/new/dir"), 0o755).unwrap();
        assert_eq!(
            std::fs::read_link(fd_path(made.as_fd())).unwrap(),
            root.join("etc/new/dir")
        );
        std::os::unix::fs::symlink("/not/yet", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("../../loop", root.join("loop")).unwrap();
        let made = r.mkdir_all(Path::new("/dangling/x"), 0o755).unwrap();
        assert_eq!(
            std::fs::read_link(fd_path(made.as_fd())).unwrap(),
            root.join("not/yet/x")
        );
        assert!(r.mkdir_all(Path::new("/loop/x"), 0o755).is_err());
        // A file through a dangling component and a dangling last link lands where they point, inside the root.
        std::os::unix::fs::symlink("/far/away", root.join("jump")).unwrap();
        std::os::unix::fs::symlink("/jump/file", root.join("etc/hosts")).unwrap();
        let made = r.touch(Path::new("/etc/hosts")).unwrap();
        assert_eq!(
            std::fs::read_link(fd_path(made.as_fd())).unwrap(),
            root.join("far/away/file")
        );
        std::os::unix::fs::symlink("self", root.join("self")).unwrap();
        assert!(r.touch(Path::new("/self")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
