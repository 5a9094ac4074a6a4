//! `exec --cgroup [<controller>[,<controller>...]:]<path>`: the exec'd process joins an existing sub-cgroup of the
//! container's cgroup instead of the container's own (runc ≥ 1.1). v1: a path per controller, or one bare path for
//! every hierarchy; v2: one bare path.
//!
//! The container may own its cgroup directories (a writable cgroup mount, or delegation), so the sub-cgroup is
//! opened beneath the container's directory with openat2 (`RESOLVE_BENEATH`, no symlinks, no mount crossings): a
//! `..` that climbs out is refused by name before that, and whatever the container renames or plants meanwhile
//! cannot take the open outside. The opened directories are what is joined (v2: clone3's `CLONE_INTO_CGROUP`; v1:
//! `cgroup.procs` opened beneath each), so the process is never in the container outside the chosen cgroup.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid --cgroup argument: {0} (empty <controller> prefix)")]
    EmptyController(String),
    #[error("invalid --cgroup argument(s): controller {0} specified multiple times")]
    Repeated(String),
    #[error("invalid --cgroup argument: {0} (missing <controller>: prefix)")]
    MissingController(String),
    #[error("bad sub cgroup path: {0}")]
    BadPath(String),
    #[error("unknown controller {0} in SubCgroupPaths")]
    UnknownController(String),
    #[error("--cgroup {controller}:{path}: cgroup v2 has one hierarchy, give the sub-cgroup as a bare path")]
    ControllerOnV2 { controller: String, path: String },
    #[error("--cgroup: controllers {0} and {1} share a hierarchy but name different sub-cgroups")]
    Conflict(String, String),
    #[error("error adding pid to cgroups: open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("error adding pid {pid} to cgroups: write {path}: {source}")]
    Join {
        pid: Pid,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--cgroup: {0}")]
    Mounts(String),
}

/// The parsed flags: controller (`""`: every hierarchy) → sub-cgroup path, as runc reads them.
pub type Request = BTreeMap<String, String>;

/// Parses the `--cgroup` arguments as runc does: `ctrl[,ctrl...]:path` any number of times, or one bare `path`.
pub fn parse(args: &[String]) -> Result<Request, Error> {
    let mut req = Request::new();
    for arg in args {
        match arg.split_once(':') {
            Some((ctrls, path)) => {
                for ctrl in ctrls.split(',') {
                    if ctrl.is_empty() {
                        return Err(Error::EmptyController(arg.clone()));
                    }
                    if req.insert(ctrl.to_string(), path.to_string()).is_some() {
                        return Err(Error::Repeated(ctrl.to_string()));
                    }
                }
            }
            None if args.len() != 1 => return Err(Error::MissingController(arg.clone())),
            None => {
                req.insert(String::new(), arg.clone());
            }
        }
    }
    Ok(req)
}

/// `sub` relative to the container's directory, `.` and `..` resolved by name (a leading `/` is the container's
/// cgroup itself, as in runc); `None` when it climbs out.
fn relative(sub: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// The directories an exec'd process joins, one per hierarchy, opened.
pub struct Target {
    /// (path shown in errors, O_PATH directory fd).
    dirs: Vec<(PathBuf, OwnedFd)>,
    /// Only the unified hierarchy: clone3 places the process.
    unified_only: bool,
}

/// Which controllers each recorded hierarchy (mount point) has; the unified hierarchy has none.
type Controllers = BTreeMap<String, Vec<String>>;

fn controllers_of(paths: &BTreeMap<String, PathBuf>) -> Result<Controllers, Error> {
    let mounts = super::mountinfo::cgroup_mounts().map_err(|e| Error::Mounts(e.to_string()))?;
    Ok(paths
        .keys()
        .map(|mnt| {
            let ctrls = mounts
                .iter()
                .find(|m| m.mountpoint.as_os_str() == mnt.as_str())
                .map(|m| m.controllers.clone())
                .unwrap_or_default();
            (mnt.clone(), ctrls)
        })
        .collect())
}

/// Per hierarchy (mount point), the sub-cgroup path to join (`""`: the container's own directory).
fn plan(
    paths: &BTreeMap<String, PathBuf>,
    controllers: &Controllers,
    req: &Request,
) -> Result<BTreeMap<String, String>, Error> {
    let unified_only = controllers.len() == 1 && controllers.values().all(|c| c.is_empty());
    let mut out: BTreeMap<String, String> =
        paths.keys().map(|m| (m.clone(), String::new())).collect();
    // Which controller set the sub-cgroup of a hierarchy, to name a conflict.
    let mut set_by: BTreeMap<String, &str> = BTreeMap::new();
    for (ctrl, sub) in req {
        if relative(sub).is_none() {
            return Err(Error::BadPath(sub.clone()));
        }
        if ctrl.is_empty() {
            out.values_mut().for_each(|p| p.clone_from(sub));
            continue;
        }
        if unified_only {
            return Err(Error::ControllerOnV2 {
                controller: ctrl.clone(),
                path: sub.clone(),
            });
        }
        let mnt = controllers
            .iter()
            .find(|(_, cs)| cs.iter().any(|c| c == ctrl))
            .map(|(m, _)| m.clone())
            .ok_or_else(|| Error::UnknownController(ctrl.clone()))?;
        if let Some(other) = set_by.get(&mnt) {
            if relative(&out[&mnt]) != relative(sub) {
                return Err(Error::Conflict(other.to_string(), ctrl.clone()));
            }
        }
        set_by.insert(mnt.clone(), ctrl);
        out.insert(mnt, sub.clone());
    }
    Ok(out)
}

impl Target {
    /// Opens, for every hierarchy of the container (`paths`: mount point → the container's directory), the
    /// directory the process joins, beneath the container's directory.
    pub fn open(paths: &BTreeMap<String, PathBuf>, req: &Request) -> Result<Target, Error> {
        let controllers = controllers_of(paths)?;
        let unified_only = controllers.len() == 1 && controllers.values().all(|c| c.is_empty());
        let mut dirs = Vec::new();
        for (mnt, sub) in plan(paths, &controllers, req)? {
            let base = &paths[&mnt];
            let rel = relative(&sub).ok_or_else(|| Error::BadPath(sub.clone()))?;
            dirs.push(open_beneath(base, &rel)?);
        }
        Ok(Target { dirs, unified_only })
    }

    /// A directory fd for clone3's `CLONE_INTO_CGROUP` (cgroup v2 only).
    pub fn clone_fd(&self) -> Result<Option<OwnedFd>, Error> {
        if !self.unified_only {
            return Ok(None);
        }
        let Some((path, fd)) = self.dirs.first() else {
            return Ok(None);
        };
        fd.try_clone().map(Some).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })
    }

    /// Moves `pid` (not yet in the container's namespaces) into every directory: `cgroup.procs` opened beneath
    /// each, no symlink followed.
    pub fn add_task(&self, pid: Pid) -> Result<(), Error> {
        for (path, dir) in &self.dirs {
            let procs = path.join("cgroup.procs");
            let err = |source| Error::Join {
                pid,
                path: procs.clone(),
                source,
            };
            let how = OpenHow::new()
                .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC)
                .resolve(beneath());
            let fd = crate::sys::openat2(dir.as_fd(), "cgroup.procs", how)
                .map_err(|e| err(std::io::Error::from(e)))?;
            std::fs::File::from(fd)
                .write_all(pid.to_string().as_bytes())
                .map_err(err)?;
        }
        Ok(())
    }

    /// The descriptors, for the children that must close them at once (they inherit them with the clone).
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.dirs.iter().map(|(_, fd)| fd.as_raw_fd()).collect()
    }
}

fn beneath() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_NO_XDEV
}

/// Opens `base/rel` (O_PATH, a directory) without leaving `base`.
fn open_beneath(base: &Path, rel: &Path) -> Result<(PathBuf, OwnedFd), Error> {
    let shown = base.join(rel);
    let err = |source| Error::Open {
        path: shown.clone(),
        source,
    };
    // The container's own directory: a host path from the state, above anything the container may change.
    let base_fd: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(base)
        .map_err(|source| Error::Open {
            path: base.to_path_buf(),
            source,
        })?
        .into();
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(beneath());
    let fd = crate::sys::openat2(base_fd.as_fd(), rel, how).map_err(|e| err(e.into()))?;
    Ok((shown, fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_as_runc() {
        let r = parse(&args(&["memory:submem", "cpu,cpuacct:subcpu"])).unwrap();
        assert_eq!(r["memory"], "submem");
        assert_eq!(
            (r["cpu"].as_str(), r["cpuacct"].as_str()),
            ("subcpu", "subcpu")
        );
        assert_eq!(parse(&args(&["foo"])).unwrap()[""], "foo");
        assert!(matches!(
            parse(&args(&[":x"])),
            Err(Error::EmptyController(_))
        ));
        assert!(matches!(
            parse(&args(&["cpu,:x"])),
            Err(Error::EmptyController(_))
        ));
        assert!(matches!(
            parse(&args(&["cpu:a", "cpu:b"])),
            Err(Error::Repeated(c)) if c == "cpu"
        ));
        assert!(matches!(
            parse(&args(&["a", "cpu:b"])),
            Err(Error::MissingController(_))
        ));
    }

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(relative("/"), Some(PathBuf::new()));
        assert_eq!(relative("a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative("a/../b"), Some(PathBuf::from("b")));
        assert_eq!(relative("/a/b/"), Some(PathBuf::from("a/b")));
        assert_eq!(relative(".."), None);
        assert_eq!(relative("a/../../b"), None);
        assert_eq!(relative("/../x"), None);
    }

    fn v1() -> (BTreeMap<String, PathBuf>, Controllers) {
        let paths = BTreeMap::from([
            ("/cg/memory".to_string(), PathBuf::from("/cg/memory/c")),
            (
                "/cg/cpu,cpuacct".to_string(),
                PathBuf::from("/cg/cpu,cpuacct/c"),
            ),
            ("/cg/unified".to_string(), PathBuf::from("/cg/unified/c")),
        ]);
        let ctrls = BTreeMap::from([
            ("/cg/memory".to_string(), vec!["memory".to_string()]),
            (
                "/cg/cpu,cpuacct".to_string(),
                vec!["cpu".to_string(), "cpuacct".to_string()],
            ),
            ("/cg/unified".to_string(), vec![]),
        ]);
        (paths, ctrls)
    }

    #[test]
    fn plan_v1() {
        let (paths, ctrls) = v1();
        let p = plan(
            &paths,
            &ctrls,
            &parse(&args(&["memory:m", "cpu,cpuacct:c"])).unwrap(),
        )
        .unwrap();
        assert_eq!(p["/cg/memory"], "m");
        assert_eq!(p["/cg/cpu,cpuacct"], "c");
        assert_eq!(p["/cg/unified"], "");
        let p = plan(&paths, &ctrls, &parse(&args(&["x"])).unwrap()).unwrap();
        assert!(p.values().all(|s| s == "x"));
        assert!(matches!(
            plan(&paths, &ctrls, &parse(&args(&["whaaat:/"])).unwrap()),
            Err(Error::UnknownController(c)) if c == "whaaat"
        ));
        assert!(matches!(
            plan(&paths, &ctrls, &parse(&args(&[".."])).unwrap()),
            Err(Error::BadPath(_))
        ));
        assert!(matches!(
            plan(
                &paths,
                &ctrls,
                &parse(&args(&["cpu:a", "cpuacct:b"])).unwrap()
            ),
            Err(Error::Conflict(..))
        ));
    }

    #[test]
    fn plan_v2_takes_a_bare_path_only() {
        let paths = BTreeMap::from([("/cg".to_string(), PathBuf::from("/cg/c"))]);
        let ctrls = BTreeMap::from([("/cg".to_string(), vec![])]);
        let p = plan(&paths, &ctrls, &parse(&args(&["x/y"])).unwrap()).unwrap();
        assert_eq!(p["/cg"], "x/y");
        assert!(matches!(
            plan(&paths, &ctrls, &parse(&args(&["memory:x"])).unwrap()),
            Err(Error::ControllerOnV2 { .. })
        ));
    }

    /// The resolution itself, on a plain directory where a symlink can be planted (cgroupfs refuses symlink(2),
    /// tests/pidfd.rs tries it in a container): a symlink to outside, or inside, is never followed.
    #[test]
    fn open_beneath_follows_no_symlink() {
        let base = std::env::temp_dir().join(format!("berth-sub-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("real/deeper")).unwrap();
        std::os::unix::fs::symlink("/", base.join("out")).unwrap();
        std::os::unix::fs::symlink("real", base.join("in")).unwrap();
        let (shown, _) = open_beneath(&base, Path::new("real/deeper")).unwrap();
        assert_eq!(shown, base.join("real/deeper"));
        assert!(open_beneath(&base, Path::new("")).is_ok());
        for bad in ["out", "out/etc", "in", "in/deeper", "missing"] {
            assert!(
                matches!(open_beneath(&base, Path::new(bad)), Err(Error::Open { .. })),
                "{bad} was opened"
            );
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
