//! The namespace plan of a config, decided at load: which namespaces the clone creates, which are joined by path
//! and in what order, which berth enters itself around the clone. `namespaces` opens the paths and carries it out.
//!
//! The fast path (every case without a joined user namespace, and without a new user namespace combined with
//! joined ones) is one clone3 carrying every new namespace flag. The pid and time namespaces apply to children, so
//! berth *itself* joins (setns) or creates (unshare) them just before the clone, and the init is born in them. The
//! cgroup namespace is unshared by the init once the parent has placed it in its cgroup, so that the namespace is
//! rooted at the container's cgroup.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceType};

/// A namespace joined by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsPath {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
}

/// How the container's namespaces come to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    /// New namespaces created by the clone itself.
    pub clone_flags: CloneFlags,
    /// Namespaces the init joins after the clone, user first and mount last.
    pub joins: Vec<NsPath>,
    /// Joined by berth before the clone (pid, time): the init is born in them.
    pub pre_joins: Vec<NsPath>,
    pub new_user: bool,
    /// Unshared by the init once it sits in its cgroup.
    pub new_cgroup: bool,
    /// Created by berth (unshare) before the clone, so that offsets can be written before anyone is inside.
    pub new_time: bool,
    pub new_pid: bool,
    /// A mount namespace, new or joined. Without one, the container's mounts are made in berth's own namespace,
    /// under the rootfs, and `delete` takes them down.
    pub mount: bool,
    /// A user namespace, new or joined.
    pub user: bool,
    /// linux.timeOffsets in the format of /proc/self/timens_offsets (`None`: no offsets).
    pub time_offsets: Option<String>,
}

impl Namespaces {
    /// Translates `linux.namespaces` and `linux.timeOffsets` (already checked by `validate`).
    pub fn from_linux(linux: &Linux) -> Result<Namespaces, String> {
        let mut plan = Namespaces {
            clone_flags: CloneFlags::empty(),
            joins: Vec::new(),
            pre_joins: Vec::new(),
            new_user: false,
            new_cgroup: false,
            new_time: false,
            new_pid: false,
            mount: false,
            user: false,
            time_offsets: time_offsets(linux)?,
        };
        for ns in linux.namespaces().iter().flatten() {
            let kind = ns.typ();
            plan.mount |= kind == LinuxNamespaceType::Mount;
            plan.user |= kind == LinuxNamespaceType::User;
            match ns.path() {
                Some(path) => {
                    let join = NsPath {
                        kind,
                        path: path.clone(),
                    };
                    match kind {
                        LinuxNamespaceType::Pid | LinuxNamespaceType::Time => {
                            plan.pre_joins.push(join)
                        }
                        _ => plan.joins.push(join),
                    }
                }
                None => match kind {
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    LinuxNamespaceType::Time => plan.new_time = true,
                    t => {
                        plan.new_user |= t == LinuxNamespaceType::User;
                        plan.new_pid |= t == LinuxNamespaceType::Pid;
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

    /// Does the container get a namespace of this kind (new or joined)?
    pub fn has(&self, kind: LinuxNamespaceType) -> bool {
        let new = match kind {
            LinuxNamespaceType::Cgroup => self.new_cgroup,
            LinuxNamespaceType::Time => self.new_time,
            t => self.clone_flags.contains(clone_flag(t)),
        };
        new || self.joined(kind).is_some()
    }

    /// The path of the namespace of this kind the container joins, if it joins one.
    pub fn joined(&self, kind: LinuxNamespaceType) -> Option<&std::path::Path> {
        self.joins
            .iter()
            .chain(&self.pre_joins)
            .find(|j| j.kind == kind)
            .map(|j| j.path.as_path())
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

/// linux.timeOffsets as /proc/self/timens_offsets takes them: one `clock secs nanosecs` line per clock.
fn time_offsets(linux: &Linux) -> Result<Option<String>, String> {
    let Some(offsets) = linux.time_offsets().as_ref() else {
        return Ok(None);
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        if !matches!(clock.as_str(), "monotonic" | "boottime") {
            return Err(format!(
                "linux.timeOffsets.{clock}: unknown clock (monotonic or boottime)"
            ));
        }
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<Namespaces, String> {
        Namespaces::from_linux(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn all_new_namespaces_go_in_one_clone_except_cgroup_and_time() {
        let p = plan(
            r#"{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"},{"type":"time"}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWNS
        );
        assert!(p.new_cgroup && p.new_time && p.new_pid && !p.new_user);
        assert!(p.mount && !p.user);
        assert!(!p.needs_staged_setup());
    }

    #[test]
    fn joins_are_ordered_user_first_mount_last_and_pid_is_prejoined() {
        let p = plan(
            r#"{"namespaces":[{"type":"mount","path":"/m"},{"type":"network","path":"/n"},{"type":"user","path":"/u"},{"type":"pid","path":"/p"}]}"#,
        )
        .unwrap();
        let kinds: Vec<_> = p.joins.iter().map(|j| j.kind).collect();
        assert_eq!(
            kinds,
            vec![
                LinuxNamespaceType::User,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Mount
            ]
        );
        assert_eq!(p.joins[0].path, PathBuf::from("/u"));
        assert_eq!(
            p.pre_joins,
            vec![NsPath {
                kind: LinuxNamespaceType::Pid,
                path: "/p".into()
            }]
        );
        assert!(p.mount && p.user && !p.new_user && p.clone_flags.is_empty());
        assert!(p.needs_staged_setup());
    }

    #[test]
    fn a_new_user_namespace_with_joins_is_staged() {
        let p = plan(r#"{"namespaces":[{"type":"user"},{"type":"network","path":"/n"}]}"#).unwrap();
        assert!(p.new_user && p.user && !p.mount && p.needs_staged_setup());
    }

    #[test]
    fn time_offsets_are_rendered_and_unknown_clocks_named() {
        let p = plan(
            r#"{"namespaces":[{"type":"time"}],"timeOffsets":{"boottime":{"secs":5,"nanosecs":7}}}"#,
        )
        .unwrap();
        assert_eq!(p.time_offsets.as_deref(), Some("boottime 5 7\n"));
        let err = plan(r#"{"namespaces":[{"type":"time"}],"timeOffsets":{"realtime":{"secs":1}}}"#)
            .unwrap_err();
        assert!(err.contains("linux.timeOffsets.realtime"), "{err}");
    }
}
