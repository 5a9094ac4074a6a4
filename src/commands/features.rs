//! `features`: the runtime-spec features.json document, derived from the code where the code has the list (mount
//! options from the option parser, namespaces from the namespace module, capabilities from the kernel-independent
//! list of the caps crate), and stating plainly what berth does not implement.

use anyhow::Result;
use serde_json::{json, Value};

use crate::config::mount_options as options;
use crate::process::hooks::Phase;

/// Every option word runc knows; `features` lists those berth's parser consumes itself (the rest would be handed
/// to the filesystem as data, which is not "supporting" them).
const CANDIDATE_MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
    "idmap",
    "ridmap",
];

pub fn mount_options() -> Vec<&'static str> {
    let mut out: Vec<&str> = CANDIDATE_MOUNT_OPTIONS
        .iter()
        .copied()
        .filter(|o| options::parse(&[o.to_string()]).data.is_empty())
        .collect();
    out.sort_unstable();
    out
}

pub fn document() -> Value {
    use oci_spec::runtime::LinuxNamespaceType as N;
    let namespaces: Vec<&str> = [
        N::Cgroup,
        N::Ipc,
        N::Mount,
        N::Network,
        N::Pid,
        N::User,
        N::Uts,
        N::Time,
    ]
    .into_iter()
    .map(crate::namespaces::kind_name)
    .collect();
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    let hooks: Vec<&str> = [
        Phase::Prestart,
        Phase::CreateRuntime,
        Phase::CreateContainer,
        Phase::StartContainer,
        Phase::Poststart,
        Phase::Poststop,
    ]
    .into_iter()
    .map(Phase::name)
    .collect();
    json!({
        "ociVersionMin": crate::config::OCI_VERSION_MIN,
        "ociVersionMax": crate::config::OCI_VERSION,
        "hooks": hooks,
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true },
            "seccomp": crate::config::seccomp::features(),
            // Support built into berth, not the host's state (the spec's meaning; runc says true too): berth applies
            // apparmorProfile and selinuxLabel on exec where the host has the LSM, and refuses them where not.
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } },
            "memoryPolicy": crate::process::mempolicy::features()
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION")
        }
    })
}

pub fn run() -> Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&document()).expect("features serialise")
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_are_what_the_parser_consumes() {
        let opts = mount_options();
        for o in [
            "ro",
            "nosuid",
            "rbind",
            "rslave",
            "tmpcopyup",
            "nosymfollow",
        ] {
            assert!(opts.contains(&o), "{o} missing from {opts:?}");
        }
        // Words the parser hands to the filesystem as data are not claimed.
        for o in ["lazytime", "defaults", "silent"] {
            assert!(!opts.contains(&o), "{o} claimed");
        }
    }

    #[test]
    fn document_has_the_spec_shape() {
        let d = document();
        assert_eq!(d["ociVersionMin"], "1.0.0");
        assert_eq!(d["hooks"].as_array().unwrap().len(), 6);
        let ns = d["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.contains(&json!("network")) && ns.contains(&json!("mount")));
        let caps = d["linux"]["capabilities"].as_array().unwrap();
        assert!(caps.contains(&json!("CAP_SYS_ADMIN")));
        assert_eq!(d["linux"]["apparmor"]["enabled"], true);
        assert_eq!(d["linux"]["selinux"]["enabled"], true);
        let sc = &d["linux"]["seccomp"];
        assert_eq!(sc["enabled"], true);
        for a in [
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_LOG",
        ] {
            assert!(sc["actions"].as_array().unwrap().contains(&json!(a)), "{a}");
        }
        assert!(sc["operators"]
            .as_array()
            .unwrap()
            .contains(&json!("SCMP_CMP_MASKED_EQ")));
        assert_eq!(sc["archs"].as_array().unwrap().len(), 3);
    }
}
