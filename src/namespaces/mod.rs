//! Namespaces: which are created by the clone, which are joined by path and in what order.
//!
//! The fast path (every case without a joined user namespace, and without a new user namespace combined with joined
//! ones) is one clone3 carrying every new namespace flag. The pid and time namespaces are special: they apply to
//! children, so berth *itself* joins (setns) or creates (unshare) them just before the clone, and the init is born in
//! them. The cgroup namespace is unshared by the init once the parent has placed it in its cgroup, so that the
//! namespace is rooted at the container's cgroup.

pub mod idmap;
pub mod trip;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

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

pub fn kind_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

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

/// Whether berth itself runs in a user namespace other than the initial one (rootless podman calls the runtime as
/// uid 0 of its own user namespace): the initial namespace maps every id, `0 0 4294967295`, and only it does.
pub fn running_in_user_ns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_initial_map(&m))
}

/// Whether this process may setns(2) into a mount namespace: CAP_SYS_ADMIN and CAP_SYS_CHROOT in its own user
/// namespace (a rootless caller has neither).
pub fn may_enter_mount_ns() -> bool {
    use caps::{has_cap, CapSet, Capability};
    [Capability::CAP_SYS_ADMIN, Capability::CAP_SYS_CHROOT]
        .into_iter()
        .all(|c| has_cap(None, CapSet::Effective, c).unwrap_or(false))
}

fn is_initial_map(uid_map: &str) -> bool {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// Config checks that need no kernel: no type twice, id mappings only with a user namespace, and so on.
pub fn validate(spec: &Spec) -> Result<(), String> {
    let linux = match spec.linux() {
        Some(l) => l,
        None => return Ok(()),
    };
    let empty = Vec::new();
    let nss = linux.namespaces().as_ref().unwrap_or(&empty);
    let mut seen = Vec::new();
    for ns in nss {
        if seen.contains(&ns.typ()) {
            return Err(format!(
                "linux.namespaces lists the {} namespace twice",
                kind_name(ns.typ())
            ));
        }
        seen.push(ns.typ());
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(format!(
                    "{} namespace path {p:?} must be absolute",
                    kind_name(ns.typ())
                ));
            }
        }
    }
    let has = |t| nss.iter().any(|n: &LinuxNamespace| n.typ() == t);
    let new_user = nss
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has(LinuxNamespaceType::User) {
        return Err("uidMappings/gidMappings need a user namespace".into());
    }
    if new_user {
        let uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        let gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if !uid || !gid {
            return Err("a new user namespace needs both uidMappings and gidMappings".into());
        }
    }
    if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
        return Err("linux.timeOffsets needs a time namespace".into());
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err("hostname needs a new uts namespace".into());
    }
    Ok(())
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
    pub fn from_spec(spec: &Spec) -> Result<Plan, Error> {
        let empty = Vec::new();
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .unwrap_or(&empty);
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
pub fn write_time_offsets(spec: &Spec) -> Result<(), Error> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
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

    fn spec(json: &str) -> Spec {
        let raw = format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"r"}},"process":{{"cwd":"/","args":["a"],"user":{{"uid":0,"gid":0}}}},"linux":{json}}}"#
        );
        serde_json::from_str(&raw).unwrap()
    }

    #[test]
    fn only_the_full_identity_map_is_the_initial_user_namespace() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("0 0 1000\n1000 100000 65536\n"));
        assert!(!is_initial_map("0 0 4294967294\n"));
    }

    #[test]
    fn all_new_namespaces_go_in_one_clone_except_cgroup_and_time() {
        let s = spec(
            r#"{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"},{"type":"time"}]}"#,
        );
        let p = Plan::from_spec(&s).unwrap();
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
        let p = Plan::from_spec(&s).unwrap();
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
        let err = Plan::from_spec(&s).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/ns"), "{err}");
    }

    #[test]
    fn validation() {
        let dup = spec(r#"{"namespaces":[{"type":"pid"},{"type":"pid"},{"type":"mount"}]}"#);
        assert!(validate(&dup).unwrap_err().contains("twice"));
        let maps = spec(
            r#"{"namespaces":[{"type":"mount"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
        );
        assert!(validate(&maps).unwrap_err().contains("user namespace"));
        let nomaps = spec(r#"{"namespaces":[{"type":"mount"},{"type":"user"}]}"#);
        assert!(validate(&nomaps).unwrap_err().contains("uidMappings"));
        let nomnt = spec(r#"{"namespaces":[{"type":"pid"}]}"#);
        // Without a mount namespace the container is chrooted into its rootfs (as runc does).
        validate(&nomnt).unwrap();
        let ok = spec(r#"{"namespaces":[{"type":"mount"},{"type":"pid"}]}"#);
        validate(&ok).unwrap();
    }
}
