//! `linux.sysctl`: which namespace each key belongs to (a container may only set what it owns), and writing the
//! values through the container's own /proc/sys, opened so that no symlink or mount can redirect the write.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::procfs::Proc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sysctl {key:?}: {reason}")]
    Refused { key: String, reason: String },
    #[error("sysctl {key}: {source}")]
    Proc {
        key: String,
        source: crate::procfs::Error,
    },
}

/// The namespace a sysctl belongs to, when it belongs to one a container can own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Ipc,
    Net,
    Uts,
}

/// A key in dotted form ("net/ipv4/ip_forward" and "net.ipv4.ip_forward" are the same sysctl).
fn dotted(key: &str) -> String {
    if key.contains('/') {
        key.replace('/', ".")
    } else {
        key.to_string()
    }
}

/// Which namespace owns `key`; None for sysctls that are global to the host (runc's list).
pub fn owner(key: &str) -> Option<Owner> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let k = dotted(key);
    if IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        Some(Owner::Ipc)
    } else if k.starts_with("net.") {
        Some(Owner::Net)
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        Some(Owner::Uts)
    } else {
        None
    }
}

/// The relative path under /proc/sys, refusing anything that could leave it.
pub fn proc_path(key: &str) -> Result<PathBuf, Error> {
    let path = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let refused = |reason: &str| Error::Refused {
        key: key.to_string(),
        reason: reason.into(),
    };
    if path.is_empty() || path.contains('\0') {
        return Err(refused("invalid name"));
    }
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." || comp == ".." {
            return Err(refused("invalid name"));
        }
    }
    Ok(PathBuf::from(path))
}

/// Checks every sysctl against the namespaces the container gets, as runc does: ipc sysctls need an ipc namespace,
/// net.* a network namespace that is not berth's own, kernel.domainname a uts namespace; kernel.hostname conflicts
/// with the `hostname` field; everything else is the host's and refused.
pub fn validate(spec: &Spec) -> Result<(), Error> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let Some(sysctl) = linux.sysctl() else {
        return Ok(());
    };
    let nss = linux.namespaces().clone().unwrap_or_default();
    let ns = |t: LinuxNamespaceType| nss.iter().find(|n| n.typ() == t);
    for key in sysctl.keys() {
        let refused = |reason: String| Error::Refused {
            key: key.clone(),
            reason,
        };
        proc_path(key)?;
        match owner(key) {
            Some(Owner::Ipc) if ns(LinuxNamespaceType::Ipc).is_some() => {}
            Some(Owner::Ipc) => {
                return Err(refused(
                    "not allowed in the host's ipc namespace (add an ipc namespace)".into(),
                ))
            }
            Some(Owner::Net) => match ns(LinuxNamespaceType::Network) {
                Some(n) if n.path().as_ref().is_some_and(|p| is_own_netns(p)) => {
                    return Err(refused(
                        "not allowed in the host's network namespace (the joined one is berth's own)"
                            .into(),
                    ))
                }
                Some(_) => {}
                None => {
                    return Err(refused(
                        "not allowed in the host's network namespace (add a network namespace)"
                            .into(),
                    ))
                }
            },
            Some(Owner::Uts) if dotted(key) == "kernel.hostname" => {
                return Err(refused(
                    "conflicts with the \"hostname\" field; set that instead".into(),
                ))
            }
            Some(Owner::Uts) if ns(LinuxNamespaceType::Uts).is_some() => {}
            Some(Owner::Uts) => {
                return Err(refused(
                    "not allowed in the host's uts namespace (add a uts namespace)".into(),
                ))
            }
            None => return Err(refused("is not in a separate kernel namespace".into())),
        }
    }
    Ok(())
}

/// Is the namespace file at `path` the network namespace berth itself runs in?
fn is_own_netns(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        std::fs::metadata("/proc/self/ns/net"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Writes every sysctl of the config through the container's /proc/sys (after pivot_root), with the checked
/// procfs writer (crate::procfs): /proc must be a procfs root, and no symlink, magic link or mount
/// crossing is followed on the way to the file.
pub fn apply(spec: &Spec) -> Result<(), Error> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let Some(first) = sysctl.keys().next() else {
        return Ok(());
    };
    let proc = Proc::open(Path::new("/proc")).map_err(|source| Error::Proc {
        key: first.clone(),
        source,
    })?;
    for (key, value) in sysctl {
        let rel = Path::new("sys").join(proc_path(key)?);
        proc.write(&rel.to_string_lossy(), value)
            .map_err(|source| Error::Proc {
                key: key.clone(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(nss: &[&str], keys: &[&str]) -> Spec {
        let nss: Vec<_> = nss
            .iter()
            .map(|t| serde_json::json!({ "type": t }))
            .collect();
        let sysctl: serde_json::Map<_, _> = keys
            .iter()
            .map(|k| (k.to_string(), serde_json::json!("1")))
            .collect();
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": { "namespaces": nss, "sysctl": sysctl }
        }))
        .unwrap()
    }

    #[test]
    fn owners_follow_runc() {
        assert_eq!(owner("net.ipv4.ip_forward"), Some(Owner::Net));
        assert_eq!(owner("net/ipv4/conf/eth0.100/forwarding"), Some(Owner::Net));
        assert_eq!(owner("kernel.shmmax"), Some(Owner::Ipc));
        assert_eq!(owner("kernel.msgmni"), Some(Owner::Ipc));
        assert_eq!(owner("kernel.sem"), Some(Owner::Ipc));
        assert_eq!(owner("fs.mqueue.queues_max"), Some(Owner::Ipc));
        assert_eq!(owner("kernel.domainname"), Some(Owner::Uts));
        assert_eq!(owner("kernel.hostname"), Some(Owner::Uts));
        assert_eq!(owner("kernel.pid_max"), None);
        assert_eq!(owner("vm.overcommit_memory"), None);
        assert_eq!(owner("kernel.shm_next_id"), None);
    }

    #[test]
    fn only_owned_namespaces_may_be_tuned() {
        let ok = |nss: &[&str], k: &str| validate(&spec_with(nss, &[k])).is_ok();
        assert!(ok(&["network"], "net.ipv4.ip_forward"));
        assert!(!ok(&["ipc", "uts"], "net.ipv4.ip_forward"));
        assert!(ok(&["ipc"], "kernel.shmmax"));
        assert!(ok(&["ipc"], "fs.mqueue.msg_max"));
        assert!(!ok(&["network"], "kernel.shmmax"));
        assert!(!ok(&["network"], "fs.mqueue.msg_max"));
        assert!(ok(&["uts"], "kernel.domainname"));
        assert!(!ok(&["ipc"], "kernel.domainname"));
        assert!(!ok(&["uts"], "kernel.hostname"));
        assert!(!ok(
            &["network", "ipc", "uts", "pid", "mount"],
            "kernel.pid_max"
        ));
        let msg = validate(&spec_with(&["ipc"], &["net.core.somaxconn"]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("net.core.somaxconn") && msg.contains("network namespace"),
            "{msg}"
        );
    }

    #[test]
    fn joining_berths_own_netns_is_refused() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {
                "namespaces": [{ "type": "network", "path": "/proc/self/ns/net" }],
                "sysctl": { "net.ipv4.ip_forward": "1" }
            }
        }))
        .unwrap();
        assert!(validate(&spec).is_err());
    }

    #[test]
    fn names_cannot_escape_proc_sys() {
        assert_eq!(
            proc_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("net/ipv4/ip_forward")
        );
        assert_eq!(
            proc_path("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("net/ipv4/conf/eth0.100/forwarding")
        );
        for bad in [
            "net/../../etc/passwd",
            "/etc/passwd",
            "net..x",
            "",
            "a\0b",
            "net/./x",
        ] {
            assert!(proc_path(bad).is_err(), "{bad:?}");
        }
    }
}
