//! The checks of config.json that need no kernel, each error naming its field (`mounts[3].destination "x": ...`).

use oci_spec::runtime::{Linux, LinuxNamespaceType, Root, Spec};

/// Checks the parts of a config moved out of `spec` (`process` has its own translation) and what is left in it.
pub fn check(spec: &Spec, root: &Root, linux: &Linux) -> Result<(), String> {
    if root.path().as_os_str().is_empty() {
        return Err("root.path is empty".into());
    }
    for (field, name) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        // The kernel limit (HOST_NAME_MAX, and __NEW_UTS_LEN for both); caught here so the error names the
        // config, not sethostname.
        if let Some(name) = name.as_ref().filter(|n| n.len() > 64) {
            return Err(format!(
                "{field}: {} bytes long; the limit is 64",
                name.len()
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().as_os_str().is_empty() {
            return Err(format!("mounts[{i}].destination: must not be empty"));
        }
    }
    namespaces(spec, linux)?;
    super::fields::check(spec, linux)
}

/// No type twice, id mappings only with a user namespace, and so on.
fn namespaces(spec: &Spec, linux: &Linux) -> Result<(), String> {
    let nss = linux.namespaces().as_deref().unwrap_or_default();
    for (i, ns) in nss.iter().enumerate() {
        if nss[..i].iter().any(|n| n.typ() == ns.typ()) {
            return Err(format!(
                "linux.namespaces[{i}]: lists the {} namespace twice",
                namespace_kind(ns.typ())
            ));
        }
        if let Some(p) = ns.path().as_ref().filter(|p| !p.is_absolute()) {
            return Err(format!(
                "linux.namespaces[{i}].path {p:?}: the {} namespace path must be absolute",
                namespace_kind(ns.typ())
            ));
        }
    }
    let has = |t| nss.iter().any(|n| n.typ() == t);
    let new_user = nss
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if (uid || gid) && !has(LinuxNamespaceType::User) {
        return Err("linux.uidMappings/gidMappings: need a user namespace".into());
    }
    if new_user && !(uid && gid) {
        return Err(
            "linux.uidMappings/gidMappings: a new user namespace needs both uidMappings and gidMappings".into(),
        );
    }
    if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
        return Err("linux.timeOffsets: needs a time namespace".into());
    }
    for (field, name) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        // Set in the host's uts namespace, it would rename the host.
        if name.as_ref().is_some_and(|n| !n.is_empty()) && !has(LinuxNamespaceType::Uts) {
            return Err(format!("{field}: needs a new uts namespace"));
        }
    }
    Ok(())
}

/// A namespace type as config.json and the kernel's /proc/<pid>/ns name it ("network" is the config's word).
pub fn namespace_kind(t: LinuxNamespaceType) -> &'static str {
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
