//! Namespaces: which are created by the clone, which are joined by path and in what order.
//!
//! The fast path (every case without a joined user namespace, and without a new user namespace combined with joined
//! ones) is one clone3 carrying every new namespace flag. The pid and time namespaces are special: they apply to
//! children, so berth *itself* joins (setns) or creates (unshare) them just before the clone, and the init is born in
//! them. The cgroup namespace is unshared by the init once the parent has placed it in its cgroup, so that the
//! namespace is rooted at the container's cgroup.

pub mod idmap;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open namespace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setns {kind} namespace {path}: {source}")]
    Setns {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("unshare {what}: {source}")]
    Unshare { what: String, source: nix::Error },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub use crate::config::namespace_kind as kind_name;

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened before the clone so that a bad path fails the create cleanly.
pub struct Join {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// How the container's namespaces come to be.
pub struct Plan {
    /// New namespaces created by the clone itself.
    pub clone_flags: CloneFlags,
    /// Namespaces the init joins after the clone, user first and mount last.
    pub joins: Vec<Join>,
    /// Joined by berth before the clone (pid, time): the init is born in them.
    pub pre_joins: Vec<Join>,
    pub new_user: bool,
    /// Unshared by the init once it sits in its cgroup.
    pub new_cgroup: bool,
    /// Created by berth (unshare) before the clone, so that offsets can be written before anyone is inside.
    pub new_time: bool,
    pub new_pid: bool,
}

impl Plan {
    pub fn from_linux(linux: &Linux) -> Result<Plan, Error> {
        let nss = linux.namespaces().as_deref().unwrap_or_default();
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            joins: Vec::new(),
            pre_joins: Vec::new(),
            new_user: false,
            new_cgroup: false,
            new_time: false,
            new_pid: false,
        };
        for ns in nss {
            match ns.path() {
                Some(path) => {
                    let file =
                        File::options()
                            .read(true)
                            .open(path)
                            .map_err(|source| Error::Open {
                                path: path.clone(),
                                source,
                            })?;
                    let join = Join {
                        kind: ns.typ(),
                        path: path.clone(),
                        fd: file.into(),
                    };
                    match ns.typ() {
                        LinuxNamespaceType::Pid | LinuxNamespaceType::Time => {
                            plan.pre_joins.push(join)
                        }
                        _ => plan.joins.push(join),
                    }
                }
                None => match ns.typ() {
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    LinuxNamespaceType::Time => plan.new_time = true,
                    t => {
                        if t == LinuxNamespaceType::User {
                            plan.new_user = true;
                        }
                        if t == LinuxNamespaceType::Pid {
                            plan.new_pid = true;
                        }
                        plan.clone_flags |= clone_flag(t);
                    }
                },
            }
        }
        // Join order: user first (it grants the rights for the rest), mount last (after it, the other paths may
        // no longer be visible; the fds are already open anyway).
        plan.joins.sort_by_key(|j| match j.kind {
            LinuxNamespaceType::User => 0,
            LinuxNamespaceType::Mount => 2,
            _ => 1,
        });
        Ok(plan)
    }

    /// The fast path cannot create a user namespace and then join namespaces owned by the host's (the new user
    /// namespace has no rights over them), nor honour a joined user namespace owning new namespaces.
    pub fn needs_staged_setup(&self) -> bool {
        let joins_user = self
            .joins
            .iter()
            .any(|j| j.kind == LinuxNamespaceType::User);
        joins_user || (self.new_user && !self.joins.is_empty())
    }
}

/// setns into an opened namespace.
pub fn enter(join: &Join) -> Result<(), Error> {
    nix::sched::setns(join.fd.as_fd(), clone_flag(join.kind)).map_err(|source| Error::Setns {
        kind: kind_name(join.kind),
        path: join.path.clone(),
        source,
    })
}

pub fn unshare(flags: CloneFlags, what: &str) -> Result<(), Error> {
    nix::sched::unshare(flags).map_err(|source| Error::Unshare {
        what: what.to_string(),
        source,
    })
}

/// Writes `linux.timeOffsets` for a time namespace nobody has entered yet (/proc/self/timens_offsets).
pub fn write_time_offsets(linux: &Linux) -> Result<(), Error> {
    let Some(offsets) = linux.time_offsets().as_ref() else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        let clock = match clock.as_str() {
            "monotonic" | "boottime" => clock.as_str(),
            other => {
                return Err(Error::Write {
                    path: "/proc/self/timens_offsets".into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("unknown clock {other:?} in linux.timeOffsets"),
                    ),
                })
            }
        };
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    let path = Path::new("/proc/self/timens_offsets");
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Linux {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn all_new_namespaces_go_in_one_clone_except_cgroup_and_time() {
        let s = spec(
            r#"{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"},{"type":"time"}]}"#,
        );
        let p = Plan::from_linux(&s).unwrap();
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWNS
        );
        assert!(p.new_cgroup && p.new_time && p.new_pid && !p.new_user);
        assert!(!p.needs_staged_setup());
    }

    #[test]
    fn joins_are_ordered_user_first_mount_last_and_pid_is_prejoined() {
        let s = spec(
            r#"{"namespaces":[{"type":"mount","path":"/proc/self/ns/mnt"},{"type":"network","path":"/proc/self/ns/net"},{"type":"user","path":"/proc/self/ns/user"},{"type":"pid","path":"/proc/self/ns/pid"}]}"#,
        );
        let p = Plan::from_linux(&s).unwrap();
        let kinds: Vec<_> = p.joins.iter().map(|j| j.kind).collect();
        assert_eq!(
            kinds,
            vec![
                LinuxNamespaceType::User,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Mount
            ]
        );
        assert_eq!(p.pre_joins.len(), 1);
        assert!(p.needs_staged_setup());
    }

    #[test]
    fn missing_namespace_path_is_an_error_naming_it() {
        let s = spec(r#"{"namespaces":[{"type":"network","path":"/nonexistent/ns"}]}"#);
        let err = Plan::from_linux(&s).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/ns"), "{err}");
    }
}
