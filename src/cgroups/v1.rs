//! cgroup v1: one directory per mounted hierarchy. On hybrid hosts the container also gets a directory in the
//! (controller-less) unified hierarchy, as runc does, so tools that look there find it.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::mountinfo::{own_dir, CgroupMount};
use super::{fs, Error, Freezer, Result};

pub struct Manager {
    paths: BTreeMap<String, PathBuf>,
}

/// The container's directory in every mounted hierarchy.
pub fn resolve(
    mounts: &[CgroupMount],
    own: &[(Vec<String>, PathBuf)],
    path: &Path,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut paths = BTreeMap::new();
    for m in mounts {
        let base = own_dir(m, own).unwrap_or_else(|| m.mountpoint.clone());
        paths.insert(
            m.mountpoint.to_string_lossy().into_owned(),
            super::join(&m.mountpoint, &base, path),
        );
    }
    if paths.is_empty() {
        return Err(Error::Unsupported(
            "no cgroup v1 hierarchy is mounted".into(),
        ));
    }
    Ok(paths)
}

impl Manager {
    pub fn new(paths: BTreeMap<String, PathBuf>) -> Self {
        Manager { paths }
    }

    /// The container's directory in the hierarchy whose directories have `file` (e.g. "freezer.state").
    pub fn dir_with(&self, file: &str) -> Option<&Path> {
        self.paths
            .values()
            .map(PathBuf::as_path)
            .find(|d| d.join(file).exists())
    }

    /// The first directory in a real (controller) hierarchy, for reading membership.
    fn any_dir(&self) -> Option<&Path> {
        self.dir_with("tasks")
            .or_else(|| self.paths.values().next().map(PathBuf::as_path))
    }

    /// A new cpuset cgroup starts with empty cpus/mems, which makes adding tasks fail: copy them down from the
    /// parent for every directory we made.
    fn inherit_cpuset(made: &[PathBuf]) -> Result<()> {
        for dir in made {
            let parent = dir.parent().unwrap_or(dir);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if fs::read(dir, file)?.trim().is_empty() {
                    fs::write(dir, file, fs::read(parent, file)?.trim())?;
                }
            }
        }
        Ok(())
    }
}

impl super::Manager for Manager {
    fn paths(&self) -> &BTreeMap<String, PathBuf> {
        &self.paths
    }

    fn create(&self) -> Result<()> {
        for dir in self.paths.values() {
            let made = fs::mkdir_all(dir)?;
            if dir.join("cpuset.cpus").exists() {
                Self::inherit_cpuset(&made)?;
            }
        }
        Ok(())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        super::v1_resources::apply(self, resources)
    }

    fn add_task(&self, pid: Pid) -> Result<()> {
        for dir in self.paths.values() {
            fs::write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn clone_fd(&self) -> Result<Option<OwnedFd>> {
        Ok(None)
    }

    fn pids(&self) -> Result<Vec<Pid>> {
        match self.any_dir() {
            Some(d) if d.exists() => fs::read_pids(d, "cgroup.procs"),
            _ => Ok(Vec::new()),
        }
    }

    fn freeze(&self, state: Freezer) -> Result<()> {
        let dir = self
            .dir_with("freezer.state")
            .ok_or_else(|| Error::Unsupported("the freezer controller is not mounted".into()))?;
        let want = match state {
            Freezer::Frozen => "FROZEN",
            Freezer::Thawed => "THAWED",
        };
        // FREEZING can linger while tasks are being stopped; re-writing FROZEN nudges the kernel (runc does this).
        for _ in 0..1000 {
            fs::write(dir, "freezer.state", want)?;
            if fs::read(dir, "freezer.state")?.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(Error::Invalid {
            path: dir.join("freezer.state"),
            reason: format!("did not reach {want}"),
        })
    }

    fn is_frozen(&self) -> bool {
        self.dir_with("freezer.state")
            .and_then(|d| fs::read(d, "freezer.state").ok())
            .is_some_and(|s| s.trim() != "THAWED")
    }

    fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for dir in self.paths.values() {
            if let Err(e) = fs::rmdir_patiently(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
