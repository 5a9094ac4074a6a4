//! cgroup v1: one directory per mounted hierarchy. On hybrid hosts the container also gets a directory in the
//! (controller-less) unified hierarchy, as runc does, so tools that look there find it.

mod blkio;
mod cpu;
mod devices;
mod hugetlb;
mod memory;
mod network;
mod pids;
pub mod rdma;

pub use pids::value as pids_value;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::config::Resources;
use nix::unistd::Pid;

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

    /// The directory of the controller whose files include `probe`, or a clear error naming the resource that
    /// needs it.
    fn controller(&self, probe: &str, resource: &'static str, controller: &str) -> Result<&Path> {
        self.dir_with(probe).ok_or_else(|| Error::NotAvailable {
            resource,
            reason: format!("the {controller} cgroup controller is not mounted on this host"),
        })
    }

    /// The first directory in a real (controller) hierarchy, for reading membership.
    fn any_dir(&self) -> Option<&Path> {
        self.dir_with("tasks")
            .or_else(|| self.paths.values().next().map(PathBuf::as_path))
    }

    /// A cpuset cgroup starts with empty cpus/mems, and a task cannot join one (ENOSPC): fill every empty
    /// directory from the hierarchy's root down to the container's from its parent, as runc does. Directories that
    /// already existed count too (one made by hand, or by a concurrent create that has not filled it yet).
    fn inherit_cpuset(mountpoint: &Path, dir: &Path) -> Result<()> {
        let Ok(below) = dir.strip_prefix(mountpoint) else {
            return Ok(());
        };
        let mut cur = mountpoint.to_path_buf();
        for part in below.components() {
            let parent = cur.clone();
            cur.push(part);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if fs::read(&cur, file)?.trim().is_empty() {
                    fs::write(&cur, file, fs::read(&parent, file)?.trim())?;
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
        for (mountpoint, dir) in &self.paths {
            fs::mkdir_all(dir)?;
            if dir.join("cpuset.cpus").exists() {
                Self::inherit_cpuset(Path::new(mountpoint), dir)?;
            }
        }
        Ok(())
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        // The unified keys are cgroup v2 files; on v1, hybrid or not, runc refuses them before writing anything
        // (its words, which clients match). An empty map asks for nothing.
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(Error::BadValue {
                resource: "unified",
                reason: "invalid configuration: cannot use unified on cgroup v1".into(),
            });
        }
        if let Some(rules) = r.devices() {
            devices::apply(self, rules)?;
        }
        if let Some(mem) = r.memory() {
            memory::apply(self, mem)?;
        }
        if let Some(c) = r.cpu() {
            cpu::apply(self, c)?;
        }
        if let Some(p) = r.pids() {
            pids::apply(self, p)?;
        }
        if let Some(b) = r.block_io() {
            blkio::apply(self, b)?;
        }
        if let Some(h) = r.hugepage_limits() {
            hugetlb::apply(self, h)?;
        }
        if let Some(n) = r.network() {
            network::apply(self, n)?;
        }
        if let Some(rdma) = r.rdma() {
            rdma::apply(self, rdma)?;
        }
        Ok(())
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
            Some(d) if d.exists() => fs::read_pids_tree(d),
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

    fn stats(&self) -> Result<super::stats::Stats> {
        let mut s = super::stats::Stats::default();
        cpu::stats(self, &mut s);
        memory::stats(self, &mut s);
        pids::stats(self, &mut s);
        blkio::stats(self, &mut s);
        hugetlb::stats(self, &mut s);
        Ok(s)
    }

    fn oom_watch(&self) -> Result<super::oom::Watch> {
        match self.dir_with("memory.oom_control") {
            Some(dir) => super::oom::Watch::v1(dir),
            None => Ok(super::oom::Watch::None),
        }
    }

    fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for dir in self.paths.values() {
            // Sub-cgroups the container made (cgroup namespace, writable cgroup mount) go first, deepest first.
            match fs::rmdir_tree(dir) {
                Ok(()) => fs::remove_default_parent(dir),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
