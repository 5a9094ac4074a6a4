//! `linux.sysctl`, checked once: each key's name and the namespace it belongs to, against the namespace plan (a
//! container may only set what it owns, as runc decides it). Whether a joined network namespace is berth's own
//! needs the kernel and stays in `rootfs::sysctl`, which writes the values.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType;

use super::Namespaces;

/// The namespace a sysctl belongs to (one a container can own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNs {
    Ipc,
    Net,
    Uts,
}

/// One checked `linux.sysctl` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// As the config spells it (for errors).
    pub key: String,
    /// Relative to /proc/sys, with no empty, `.` or `..` component.
    pub path: PathBuf,
    pub value: String,
    pub owner: SysctlNs,
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
pub fn owner(key: &str) -> Option<SysctlNs> {
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
        Some(SysctlNs::Ipc)
    } else if k.starts_with("net.") {
        Some(SysctlNs::Net)
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        Some(SysctlNs::Uts)
    } else {
        None
    }
}

/// The relative path under /proc/sys, refusing anything that could leave it.
fn proc_path(key: &str) -> Option<PathBuf> {
    let path = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let bad = |c: &str| c.is_empty() || c == "." || c == "..";
    if path.is_empty() || path.contains('\0') || path.split('/').any(bad) {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Checks every key against the namespace plan, as runc does: ipc sysctls need an ipc namespace, net.* a network
/// namespace, kernel.domainname a uts namespace; kernel.hostname conflicts with the `hostname` field; everything
/// else is the host's and refused. Sorted by key, so the order of the writes does not depend on a hash.
pub fn translate(
    sysctl: Option<HashMap<String, String>>,
    plan: &Namespaces,
) -> Result<Vec<Sysctl>, String> {
    let mut out = Vec::new();
    for (key, value) in sysctl.unwrap_or_default() {
        let refused = |reason: &str| format!("linux.sysctl {key:?}: {reason}");
        let path = proc_path(&key).ok_or_else(|| refused("invalid name"))?;
        let owner = match owner(&key) {
            Some(SysctlNs::Uts) if dotted(&key) == "kernel.hostname" => {
                return Err(refused(
                    "conflicts with the \"hostname\" field; set that instead",
                ))
            }
            Some(o) => o,
            None => return Err(refused("is not in a separate kernel namespace")),
        };
        let (kind, name) = match owner {
            SysctlNs::Ipc => (LinuxNamespaceType::Ipc, "ipc"),
            SysctlNs::Net => (LinuxNamespaceType::Network, "network"),
            SysctlNs::Uts => (LinuxNamespaceType::Uts, "uts"),
        };
        if !plan.has(kind) {
            return Err(refused(&format!(
                "not allowed in the host's {name} namespace (add a {name} namespace)"
            )));
        }
        out.push(Sysctl {
            key,
            path,
            value,
            owner,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(nss: &[&str], key: &str) -> Result<Vec<Sysctl>, String> {
        let nss: Vec<_> = nss.iter().map(|t| serde_json::json!({"type": t})).collect();
        let linux = serde_json::from_value(serde_json::json!({"namespaces": nss})).unwrap();
        let plan = Namespaces::from_linux(&linux).unwrap();
        translate(
            Some(HashMap::from([(key.to_string(), "1".to_string())])),
            &plan,
        )
    }

    #[test]
    fn keys_need_the_namespace_they_belong_to() {
        let s = check(&["network"], "net/ipv4/ip_forward").unwrap();
        assert_eq!(s[0].path, PathBuf::from("net/ipv4/ip_forward"));
        assert_eq!(s[0].owner, SysctlNs::Net);
        assert_eq!(
            check(&["ipc"], "kernel.shmmax").unwrap()[0].path,
            PathBuf::from("kernel/shmmax")
        );
        check(&["ipc"], "fs.mqueue.msg_max").unwrap();
        check(&["uts"], "kernel.domainname").unwrap();
        for (nss, key, want) in [
            (
                &["ipc"][..],
                "net.ipv4.ip_forward",
                "linux.sysctl \"net.ipv4.ip_forward\": not allowed in the host's network namespace",
            ),
            (
                &["network"],
                "kernel.shmmax",
                "linux.sysctl \"kernel.shmmax\": not allowed in the host's ipc namespace",
            ),
            (&["ipc"], "kernel.domainname", "uts namespace"),
            (&["uts"], "kernel.hostname", "\"hostname\" field"),
            (
                &["ipc", "network"],
                "kernel.pid_max",
                "is not in a separate kernel namespace",
            ),
            (
                &["network"],
                "net/../../../etc/passwd",
                "linux.sysctl \"net/../../../etc/passwd\": invalid name",
            ),
            (&["network"], "net..ipv4", "invalid name"),
            (&["network"], "", "invalid name"),
        ] {
            let e = check(nss, key).unwrap_err();
            assert!(e.contains(want), "{key}: {e}");
        }
    }

    #[test]
    fn owners_follow_runc() {
        assert_eq!(owner("net.ipv4.ip_forward"), Some(SysctlNs::Net));
        assert_eq!(
            owner("net/ipv4/conf/eth0.100/forwarding"),
            Some(SysctlNs::Net)
        );
        assert_eq!(owner("kernel.shmmax"), Some(SysctlNs::Ipc));
        assert_eq!(owner("kernel.msgmni"), Some(SysctlNs::Ipc));
        assert_eq!(owner("kernel.sem"), Some(SysctlNs::Ipc));
        assert_eq!(owner("fs.mqueue.queues_max"), Some(SysctlNs::Ipc));
        assert_eq!(owner("kernel.domainname"), Some(SysctlNs::Uts));
        assert_eq!(owner("kernel.hostname"), Some(SysctlNs::Uts));
        assert_eq!(owner("kernel.pid_max"), None);
        assert_eq!(owner("vm.overcommit_memory"), None);
        assert_eq!(owner("kernel.shm_next_id"), None);
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
            assert!(proc_path(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_joined_namespace_owns_its_sysctls_too() {
        let linux = serde_json::from_value(serde_json::json!({
            "namespaces": [{"type": "network", "path": "/run/netns/x"}, {"type": "ipc", "path": "/p/ipc"}]
        }))
        .unwrap();
        let plan = Namespaces::from_linux(&linux).unwrap();
        let keys = HashMap::from([
            ("net.core.somaxconn".to_string(), "1".to_string()),
            ("kernel.sem".to_string(), "1".to_string()),
        ]);
        let s = translate(Some(keys), &plan).unwrap();
        assert_eq!(
            s.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
            ["kernel.sem", "net.core.somaxconn"]
        );
    }
}
