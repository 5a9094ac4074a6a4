//! Rootless cgroups, as runc's rootless cgroupfs manager behaves: a caller that may not write a hierarchy (a
//! non-root user; root of a user namespace, where /sys/fs/cgroup belongs to an unmapped root or is read-only) goes
//! without the container's cgroup there. That is harmless while the config asks nothing of that hierarchy's
//! controllers; a limit that needs one is refused before anything is made, since it could not be enforced. Device
//! rules are tried and their failure ignored: neither a v1 devices cgroup nor a v2 BPF program can be set up without
//! the host's root, and a rootless container cannot make device nodes anyway (it gets binds of the host's).
//!
//! Which hierarchies are writable is decided by access(2) with the effective ids, without making anything, so that a
//! refused create leaves no directory behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::unistd::AccessFlags;
use oci_spec::runtime::LinuxResources;

use super::mountinfo::CgroupMount;
use super::{Error, Manager, Result};
use crate::config::Resources;

/// The manager for a rootless create: `manager` without the hierarchies this caller may not write, or an error
/// when the config's resources need one of those.
pub fn restrict(manager: Box<dyn Manager>, resources: &Resources) -> Result<Box<dyn Manager>> {
    // systemd makes the cgroup itself (and refuses, with its reason, what the caller may not do).
    if manager.systemd_unit().is_some() {
        return Ok(manager);
    }
    let mounts = super::mountinfo::cgroup_mounts()?;
    let (kept, dropped): (BTreeMap<_, _>, BTreeMap<_, _>) = manager
        .paths()
        .clone()
        .into_iter()
        .partition(|(_, dir)| writable(dir));
    for controller in asked(resources) {
        let Some((mnt, dir)) = dropped
            .iter()
            .find(|(mnt, _)| holds(&mounts, mnt, controller))
        else {
            continue;
        };
        crate::logging::debug(&format!(
            "rootless: cgroup hierarchy {mnt} is not writable, and the config sets a {controller} limit"
        ));
        return Err(Error::Rootless {
            controller,
            path: dir.clone(),
        });
    }
    for mnt in dropped.keys() {
        crate::logging::debug(&format!(
            "rootless: no container cgroup in {mnt} (not writable)"
        ));
    }
    Ok(super::from_paths(&kept))
}

/// Writes the create-time resources of a rootless container: device rules are tried, and a kernel refusal ignored
/// (see the module comment); everything else as for any container.
pub fn apply(manager: &dyn Manager, resources: &Resources) -> Result<()> {
    manager.apply(&resources.without_devices())?;
    if resources.devices().is_some() {
        if let Err(e) = manager.apply(&resources.only_devices()) {
            crate::logging::debug(&format!("rootless: device rules not applied: {e}"));
        }
    }
    Ok(())
}

/// Whether this process may make (or join) `dir`: the nearest existing directory on its way must be writable, and
/// an existing `dir` must let it write `cgroup.procs`.
fn writable(dir: &Path) -> bool {
    let mut cur = dir;
    while std::fs::symlink_metadata(cur).is_err() {
        match cur.parent() {
            Some(p) => cur = p,
            None => return false,
        }
    }
    let target: PathBuf = if cur == dir {
        dir.join("cgroup.procs")
    } else {
        cur.to_path_buf()
    };
    nix::unistd::faccessat(None, &target, AccessFlags::W_OK, AtFlags::AT_EACCESS).is_ok()
}

/// Whether the hierarchy mounted at `mnt` holds `controller` ("unified": the cgroup2 hierarchy of a hybrid host;
/// on a pure v2 host the one hierarchy holds every controller).
fn holds(mounts: &[CgroupMount], mnt: &str, controller: &str) -> bool {
    let Some(m) = mounts.iter().find(|m| m.mountpoint == Path::new(mnt)) else {
        return false;
    };
    let pure_v2 = mounts.iter().all(CgroupMount::is_v2);
    if m.is_v2() {
        pure_v2 || controller == "unified"
    } else {
        m.controllers.iter().any(|c| c == controller)
    }
}

/// The controllers (v1 names) whose files the resources would write; device rules are not among them.
fn asked(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.memory().as_ref().is_some_and(has_value) {
        out.push("memory");
    }
    if let Some(c) = r.cpu() {
        if c.cpus().is_some() || c.mems().is_some() {
            out.push("cpuset");
        }
        let mut rest = c.clone();
        rest.set_cpus(None);
        rest.set_mems(None);
        if has_value(&rest) {
            out.push("cpu");
        }
    }
    if r.pids().is_some() {
        out.push("pids");
    }
    if r.block_io().as_ref().is_some_and(has_value) {
        out.push("blkio");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push("hugetlb");
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() {
            out.push("net_cls");
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            out.push("net_prio");
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push("rdma");
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        out.push("unified");
    }
    out
}

/// Whether a resource section sets anything: its fields are options, left out of the JSON when unset.
fn has_value<T: serde::Serialize>(section: &T) -> bool {
    match serde_json::to_value(section) {
        Ok(serde_json::Value::Object(o)) => o
            .values()
            .any(|v| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty))),
        Ok(serde_json::Value::Null) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn only_sections_with_a_value_ask_for_a_controller() {
        assert!(asked(&resources(
            r#"{"devices":[{"allow":false,"access":"rwm"}]}"#
        ))
        .is_empty());
        assert!(asked(&resources(
            r#"{"memory":{},"cpu":{},"blockIO":{},"hugepageLimits":[]}"#
        ))
        .is_empty());
        assert_eq!(
            asked(&resources(r#"{"memory":{"limit":1048576}}"#)),
            ["memory"]
        );
        assert_eq!(asked(&resources(r#"{"cpu":{"cpus":"0"}}"#)), ["cpuset"]);
        assert_eq!(
            asked(&resources(r#"{"cpu":{"shares":512,"mems":"0"}}"#)),
            ["cpuset", "cpu"]
        );
        assert_eq!(asked(&resources(r#"{"pids":{"limit":10}}"#)), ["pids"]);
        assert_eq!(
            asked(&resources(r#"{"network":{"classID":1}}"#)),
            ["net_cls"]
        );
        assert_eq!(
            asked(&resources(r#"{"unified":{"memory.high":"1M"}}"#)),
            ["unified"]
        );
    }

    #[test]
    fn hierarchies_hold_their_controllers() {
        let text = b"30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
            31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
            32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let hybrid = super::super::mountinfo::cgroup_mounts_in(text);
        assert!(holds(&hybrid, "/sys/fs/cgroup/memory", "memory"));
        assert!(holds(&hybrid, "/sys/fs/cgroup/cpu,cpuacct", "cpu"));
        assert!(!holds(&hybrid, "/sys/fs/cgroup/unified", "memory"));
        assert!(holds(&hybrid, "/sys/fs/cgroup/unified", "unified"));
        let v2 = super::super::mountinfo::cgroup_mounts_in(
            b"30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert!(holds(&v2, "/sys/fs/cgroup", "memory"));
    }

    #[test]
    fn writability_is_judged_at_the_nearest_existing_directory() {
        let tmp = std::env::temp_dir().join(format!("berth-rootless-unit-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        // A missing directory under a writable one can be made; the path itself need not exist.
        assert!(writable(&tmp.join("a/b/c")));
        // An existing directory without cgroup.procs cannot be joined.
        assert!(!writable(&tmp));
        std::fs::write(tmp.join("cgroup.procs"), "").unwrap();
        assert!(writable(&tmp));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
