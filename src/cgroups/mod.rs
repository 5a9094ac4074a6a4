//! Cgroup managers. One [`Manager`] trait; [`v1`] drives the legacy per-controller hierarchies (and, on hybrid
//! hosts, the container's directory in the unified hierarchy), [`v2`] the unified hierarchy.
//!
//! Where the container's cgroup lives is fixed at create time and recorded in the state as a map from hierarchy
//! mount point to directory, so that later commands rebuild the same manager with [`from_paths`].

pub mod convert;
pub mod devices;
pub mod fs;
pub mod mountinfo;
pub mod oom;
pub mod rootless;
pub mod stats;
pub mod sub;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::config::Resources;
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroupsPath {path:?}: {reason}")]
    BadPath { path: PathBuf, reason: &'static str },
    #[error("cgroups: {0}")]
    Unsupported(String),
    #[error("cgroup {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// The kernel refused a value: names the file and the value.
    #[error("cgroup write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    /// The config asks for a resource whose controller (or file) this host does not have.
    #[error("linux.resources.{resource}: {reason}")]
    NotAvailable {
        resource: &'static str,
        reason: String,
    },
    /// A value of the config that no kernel would accept.
    #[error("linux.resources.{resource}: {reason}")]
    BadValue {
        resource: &'static str,
        reason: String,
    },
    /// A rootless caller may not write the hierarchy that a limit of the config needs (runc's words first).
    #[error("cannot set {controller} limit: container could not join or create cgroup ({path} is not writable by this rootless caller)")]
    Rootless {
        controller: &'static str,
        path: PathBuf,
    },
    /// systemd refused or failed (its reason), or could not be reached (the sockets tried).
    #[error("systemd cgroup driver: {0}")]
    Systemd(String),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        source: nix::errno::Errno,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a controller-less cgroup2 (usually at /sys/fs/cgroup/unified).
    Hybrid,
    /// cgroup2 only.
    Unified,
}

/// The host layout, from the cgroup mounts berth can see.
fn layout_of(mounts: &[mountinfo::CgroupMount]) -> Result<Layout> {
    let has_v1 = mounts.iter().any(|m| !m.is_v2());
    let has_v2 = mounts.iter().any(|m| m.is_v2());
    Ok(match (has_v1, has_v2) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::Legacy,
        (false, true) => Layout::Unified,
        (false, false) => return Err(Error::Unsupported("no cgroup hierarchy is mounted".into())),
    })
}

/// Freezer states, as `pause` and `resume` set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    Frozen,
    Thawed,
}

/// What every cgroup implementation offers the lifecycle.
pub trait Manager {
    /// Directories per hierarchy mount point; recorded in the container state.
    fn paths(&self) -> &BTreeMap<String, PathBuf>;
    /// Makes the cgroup directories (and missing parents).
    fn create(&self) -> Result<()>;
    /// Writes the resource limits of the config (also used by `update`).
    fn apply(&self, resources: &Resources) -> Result<()>;
    /// Moves a process into the cgroup (v1; v2 when clone3 could not place it).
    fn add_task(&self, pid: Pid) -> Result<()>;
    /// A directory fd for clone3's CLONE_INTO_CGROUP, where the layout allows it.
    fn clone_fd(&self) -> Result<Option<OwnedFd>>;
    /// The systemd unit and its slice, when systemd owns the cgroup (`--systemd-cgroup`); recorded in the state.
    fn systemd_unit(&self) -> Option<(&str, &str)> {
        None
    }
    /// Every process in the cgroup and its sub-cgroups (host pids).
    fn pids(&self) -> Result<Vec<Pid>>;
    fn freeze(&self, state: Freezer) -> Result<()>;
    fn is_frozen(&self) -> bool;
    /// Removes the directories; fails if processes remain after a bounded wait.
    fn destroy(&self) -> Result<()>;
    /// Usage statistics, in runc's `events --stats` schema.
    fn stats(&self) -> Result<stats::Stats>;
    /// A pollable notifier of OOM events in the cgroup.
    fn oom_watch(&self) -> Result<oom::Watch>;
}

/// Builds the manager for a new container from `linux.cgroupsPath` (or a default derived from the id); with
/// `systemd`, the path has the form `slice:prefix:name` and systemd makes the cgroup (with the unit properties
/// of `annotations`' `org.systemd.property.*`).
pub fn for_container(
    cgroups_path: Option<&Path>,
    annotations: Option<&std::collections::HashMap<String, String>>,
    id: &str,
    systemd: bool,
    rootless: bool,
) -> Result<Box<dyn Manager>> {
    if systemd {
        let raw = cgroups_path.map(|p| {
            p.to_str().ok_or_else(|| Error::BadPath {
                path: p.to_path_buf(),
                reason: "it is not UTF-8",
            })
        });
        let raw = raw.transpose()?;
        let mounts = mountinfo::cgroup_mounts()?;
        let own = mountinfo::own_cgroups()?;
        return Ok(Box::new(systemd::Manager::new(
            raw,
            annotations,
            id,
            &mounts,
            &own,
            rootless,
        )?));
    }
    let default = Path::new(fs::DEFAULT_PARENT).join(id);
    let path = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => default.as_path(),
    };
    // The systemd form `slice:prefix:name` (containerd sends it for a `*.slice` parent whatever the driver) is, as
    // in runc's cgroupfs manager, taken literally: one relative directory of that name.
    check_path(path)?;
    let mounts = mountinfo::cgroup_mounts()?;
    let own = mountinfo::own_cgroups()?;
    match layout_of(&mounts)? {
        Layout::Unified => Ok(Box::new(v2::Manager::new(v2::resolve(
            &mounts, &own, path,
        )?))),
        Layout::Legacy | Layout::Hybrid => Ok(Box::new(v1::Manager::new(v1::resolve(
            &mounts, &own, path,
        )?))),
    }
}

/// Rebuilds the manager of a recorded container: systemd's when it recorded a unit (`unit`, `slice`), so that
/// `update` sets unit properties and `delete` stops the unit; the cgroupfs one otherwise.
pub fn from_record(
    paths: &BTreeMap<String, PathBuf>,
    unit: Option<(&str, &str)>,
) -> Box<dyn Manager> {
    match unit {
        Some((unit, slice)) => Box::new(systemd::Manager::existing(unit, slice, paths)),
        None => from_paths(paths),
    }
}

/// Rebuilds the manager recorded in a container's state.
pub fn from_paths(paths: &BTreeMap<String, PathBuf>) -> Box<dyn Manager> {
    let unified_only = paths.len() == 1
        && paths
            .keys()
            .all(|mnt| crate::sys::is_cgroup2(Path::new(mnt)).unwrap_or(false));
    if unified_only {
        let (mnt, dir) = paths.iter().next().expect("one entry");
        Box::new(v2::Manager::new(v2::Placement {
            mountpoint: PathBuf::from(mnt),
            dir: dir.clone(),
        }))
    } else {
        Box::new(v1::Manager::new(paths.clone()))
    }
}

/// A cgroupsPath never climbs out of its hierarchy.
fn check_path(path: &Path) -> Result<()> {
    use std::path::Component;
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::BadPath {
            path: path.to_path_buf(),
            reason: "it must not contain ..",
        });
    }
    Ok(())
}

/// Joins a cgroupsPath onto a base directory: absolute paths hang from the hierarchy root, relative ones from
/// `relative_base`.
pub(crate) fn join(mountpoint: &Path, relative_base: &Path, path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if path.is_absolute() {
        mountpoint.join(rel)
    } else {
        relative_base.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotdot_is_refused() {
        assert!(check_path(Path::new("a/../../b")).is_err());
        assert!(check_path(Path::new("/a/b")).is_ok());
    }

    #[test]
    fn join_absolute_and_relative() {
        let m = Path::new("/sys/fs/cgroup/memory");
        let base = Path::new("/sys/fs/cgroup/memory/me");
        assert_eq!(join(m, base, Path::new("/x/y")), m.join("x/y"));
        assert_eq!(join(m, base, Path::new("x/y")), base.join("x/y"));
    }

    #[test]
    fn systemd_form_is_one_literal_directory() {
        let m = Path::new("/sys/fs/cgroup/memory");
        let base = Path::new("/sys/fs/cgroup/memory/me");
        let p = Path::new("kubepods.slice:cri-containerd:abc");
        assert!(check_path(p).is_ok());
        assert_eq!(
            join(m, base, p),
            base.join("kubepods.slice:cri-containerd:abc")
        );
    }
}
