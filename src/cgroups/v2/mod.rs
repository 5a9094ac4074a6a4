//! cgroup v2: one directory in the unified hierarchy; processes are born in it through clone3's CLONE_INTO_CGROUP.

mod cpu;
mod devices;
mod hugetlb;
mod io;
mod memory;
mod pids;
pub mod unified;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::config::Resources;
use nix::unistd::Pid;

use super::mountinfo::{own_dir, CgroupMount};
use super::{fs, Error, Freezer, Result};

#[derive(Debug, Clone)]
pub struct Placement {
    pub mountpoint: PathBuf,
    pub dir: PathBuf,
}

pub struct Manager {
    placement: Placement,
    paths: BTreeMap<String, PathBuf>,
}

/// Relative paths go under the *parent* of berth's own cgroup: a cgroup that holds processes (berth's) cannot
/// enable controllers for its children.
pub fn resolve(
    mounts: &[CgroupMount],
    own: &[(Vec<String>, PathBuf)],
    path: &Path,
) -> Result<Placement> {
    let m = mounts
        .iter()
        .find(|m| m.is_v2())
        .ok_or_else(|| Error::Unsupported("no cgroup2 hierarchy is mounted".into()))?;
    let own = own_dir(m, own).unwrap_or_else(|| m.mountpoint.clone());
    let base = if own == m.mountpoint {
        own
    } else {
        own.parent().map(Path::to_path_buf).unwrap_or(own)
    };
    Ok(Placement {
        mountpoint: m.mountpoint.clone(),
        dir: super::join(&m.mountpoint, &base, path),
    })
}

impl Manager {
    pub fn new(placement: Placement) -> Self {
        let paths = BTreeMap::from([(
            placement.mountpoint.to_string_lossy().into_owned(),
            placement.dir.clone(),
        )]);
        Manager { placement, paths }
    }

    pub fn dir(&self) -> &Path {
        &self.placement.dir
    }

    /// Enables in every ancestor's subtree_control the controllers it has, so the container's cgroup gets them.
    fn enable_controllers(&self) -> Result<()> {
        let rel = self
            .placement
            .dir
            .strip_prefix(&self.placement.mountpoint)
            .unwrap_or(Path::new(""));
        let mut cur = self.placement.mountpoint.clone();
        let comps: Vec<_> = rel.components().collect();
        for comp in &comps[..comps.len().saturating_sub(1)] {
            enable_all(&cur)?;
            cur.push(comp);
        }
        enable_all(&cur)
    }
}

fn enable_all(dir: &Path) -> Result<()> {
    let available = fs::read(dir, "cgroup.controllers")?;
    let enabled = fs::read(dir, "cgroup.subtree_control")?;
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Some controllers may refuse (e.g. a threaded subtree); enable what can be, one by one.
    if fs::write(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        for c in &missing {
            let _ = fs::write(dir, "cgroup.subtree_control", c);
        }
    }
    Ok(())
}

impl super::Manager for Manager {
    fn paths(&self) -> &BTreeMap<String, PathBuf> {
        &self.paths
    }

    fn create(&self) -> Result<()> {
        fs::mkdir_all(&self.placement.dir)?;
        self.enable_controllers()
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        let dir = self.dir();
        if let Some(rules) = r.devices() {
            devices::apply(dir, rules)?;
        }
        if let Some(mem) = r.memory() {
            memory::apply(dir, mem)?;
        }
        if let Some(c) = r.cpu() {
            cpu::apply(dir, c)?;
        }
        if let Some(p) = r.pids() {
            pids::apply(dir, p)?;
        }
        if let Some(b) = r.block_io() {
            io::apply(dir, b)?;
        }
        if let Some(h) = r.hugepage_limits() {
            hugetlb::apply(dir, h)?;
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(Error::NotAvailable {
                    resource: "network",
                    reason: "net_cls and net_prio do not exist on cgroup v2".into(),
                });
            }
        }
        if let Some(rdma) = r.rdma() {
            if !super::v1::rdma::lines(rdma).is_empty() {
                need(dir, "rdma.max", "rdma")?;
                super::v1::rdma::write(dir, rdma)?;
            }
        }
        if let Some(u) = r.unified() {
            unified::apply(dir, u)?;
        }
        Ok(())
    }

    fn add_task(&self, pid: Pid) -> Result<()> {
        fs::write(&self.placement.dir, "cgroup.procs", &pid.to_string())
    }

    fn clone_fd(&self) -> Result<Option<OwnedFd>> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.placement.dir)
            .map_err(|source| Error::Io {
                op: "open",
                path: self.placement.dir.clone(),
                source,
            })?;
        Ok(Some(OwnedFd::from(dir)))
    }

    fn pids(&self) -> Result<Vec<Pid>> {
        if !self.placement.dir.exists() {
            return Ok(Vec::new());
        }
        fs::read_pids_tree(&self.placement.dir)
    }

    fn freeze(&self, state: Freezer) -> Result<()> {
        let dir = &self.placement.dir;
        let (value, frozen) = match state {
            Freezer::Frozen => ("1", "frozen 1"),
            Freezer::Thawed => ("0", "frozen 0"),
        };
        fs::write(dir, "cgroup.freeze", value)?;
        for _ in 0..1000 {
            if fs::read(dir, "cgroup.events")?.lines().any(|l| l == frozen) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(Error::Invalid {
            path: dir.join("cgroup.events"),
            reason: format!("did not reach {frozen}"),
        })
    }

    fn is_frozen(&self) -> bool {
        fs::read(&self.placement.dir, "cgroup.freeze").is_ok_and(|s| s.trim() == "1")
    }

    fn stats(&self) -> Result<super::stats::Stats> {
        let mut s = super::stats::Stats::default();
        let dir = self.dir();
        cpu::stats(dir, &mut s);
        memory::stats(dir, &mut s);
        pids::stats(dir, &mut s);
        io::stats(dir, &mut s);
        hugetlb::stats(dir, &mut s);
        Ok(s)
    }

    fn oom_watch(&self) -> Result<super::oom::Watch> {
        if self.dir().join("memory.events").exists() {
            super::oom::Watch::v2(self.dir())
        } else {
            Ok(super::oom::Watch::None)
        }
    }

    fn destroy(&self) -> Result<()> {
        let dir = &self.placement.dir;
        if !dir.exists() {
            return Ok(());
        }
        if dir.join("cgroup.kill").exists() {
            let _ = fs::write(dir, "cgroup.kill", "1");
        }
        fs::rmdir_tree(dir)?;
        fs::remove_default_parent(dir);
        Ok(())
    }
}

/// The interface file a resource needs, or a clear error when its controller is not enabled here.
fn need(dir: &Path, file: &str, resource: &'static str) -> Result<()> {
    if dir.join(file).exists() {
        return Ok(());
    }
    let controller = file.split('.').next().unwrap_or(file);
    Err(Error::NotAvailable {
        resource,
        reason: format!(
            "{} does not exist: the {controller} controller is not available in this cgroup",
            dir.join(file).display()
        ),
    })
}
