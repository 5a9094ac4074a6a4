//! Namespaces, carried out: the paths of the config's plan (`config::Namespaces`) opened before the clone, setns,
//! unshare, and the time offsets.

pub mod idmap;
pub mod trip;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNamespaceType;

use crate::config::{Namespaces, NsPath};

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

pub use crate::config::clone_flag;

/// Whether berth itself runs in a user namespace other than the initial one (rootless podman calls the runtime as
/// uid 0 of its own user namespace): the initial namespace maps every id, `0 0 4294967295`, and only it does.
///
/// Read once per berth process: the rootless decision, the default state root and the init's rootfs (a clone, in
/// the same user namespace whenever the container has none of its own) all ask.
pub fn running_in_user_ns() -> bool {
    static IN_USER_NS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN_USER_NS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_initial_map(&m))
    })
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

/// A namespace to join, opened before the clone so that a bad path fails the create cleanly.
pub struct Join {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespaces of the config's plan to join, opened.
pub struct Plan {
    /// Joined by the init after the clone ([`enter_all`]: the others before the user namespace where berth may).
    pub joins: Vec<Join>,
    /// Joined by berth before the clone (pid, time): the init is born in them.
    pub pre_joins: Vec<Join>,
}

impl Plan {
    /// Opens every namespace path of `ns`, before anything exists, so that a bad path fails the create cleanly.
    pub fn open(ns: &Namespaces) -> Result<Plan, Error> {
        let open = |j: &NsPath| -> Result<Join, Error> {
            let file = File::options()
                .read(true)
                .open(&j.path)
                .map_err(|source| Error::Open {
                    path: j.path.clone(),
                    source,
                })?;
            Ok(Join {
                kind: j.kind,
                path: j.path.clone(),
                fd: file.into(),
            })
        };
        Ok(Plan {
            joins: ns.joins.iter().map(open).collect::<Result<_, _>>()?,
            pre_joins: ns.pre_joins.iter().map(open).collect::<Result<_, _>>()?,
        })
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

/// Joins every namespace of `joins`. As runc: with a user namespace among them, every other one is tried first,
/// with berth's own privileges, since once inside that user namespace berth has none over a namespace it does not
/// own (a network namespace of the host's, say); those refused (EPERM: rootless, where the user namespace brings
/// the privileges) are joined after it.
pub fn enter_all(joins: &[Join]) -> Result<(), Error> {
    let Some(user) = joins.iter().find(|j| j.kind == LinuxNamespaceType::User) else {
        return joins.iter().try_for_each(enter);
    };
    let mut after_user = Vec::new();
    for join in joins.iter().filter(|j| j.kind != LinuxNamespaceType::User) {
        match enter(join) {
            Err(Error::Setns {
                source: nix::errno::Errno::EPERM,
                ..
            }) => after_user.push(join),
            other => other?,
        }
    }
    enter(user)?;
    after_user.into_iter().try_for_each(enter)
}

pub fn unshare(flags: CloneFlags, what: &str) -> Result<(), Error> {
    nix::sched::unshare(flags).map_err(|source| Error::Unshare {
        what: what.to_string(),
        source,
    })
}

/// Writes the config's time offsets (rendered by `config`) for a time namespace nobody has entered yet.
pub fn write_time_offsets(offsets: &str) -> Result<(), Error> {
    let path = Path::new("/proc/self/timens_offsets");
    std::fs::write(path, offsets).map_err(|source| Error::Write {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Namespaces {
        Namespaces::from_linux(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn only_the_full_identity_map_is_the_initial_user_namespace() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("0 0 1000\n1000 100000 65536\n"));
        assert!(!is_initial_map("0 0 4294967294\n"));
    }

    #[test]
    fn every_path_is_opened_in_the_plans_order() {
        let ns = plan(
            r#"{"namespaces":[{"type":"mount","path":"/proc/self/ns/mnt"},{"type":"user","path":"/proc/self/ns/user"},{"type":"pid","path":"/proc/self/ns/pid"}]}"#,
        );
        let p = Plan::open(&ns).unwrap();
        let kinds: Vec<_> = p.joins.iter().map(|j| j.kind).collect();
        assert_eq!(kinds, [LinuxNamespaceType::User, LinuxNamespaceType::Mount]);
        assert_eq!(p.pre_joins.len(), 1);
    }

    #[test]
    fn missing_namespace_path_is_an_error_naming_it() {
        let ns = plan(r#"{"namespaces":[{"type":"network","path":"/nonexistent/ns"}]}"#);
        let err = Plan::open(&ns).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/ns"), "{err}");
    }
}
