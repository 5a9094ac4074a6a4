//! `linux.sysctl` (its names and namespaces checked at load, in `config`): the one check that needs the kernel, and
//! writing the values through the container's own /proc/sys, opened so that no symlink or mount can redirect the
//! write.

use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType;

use crate::config::{Config, SysctlNs};
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

/// A network sysctl in a joined network namespace that is berth's own would tune the host's: refused, as runc
/// does.
pub fn validate(config: &Config) -> Result<(), Error> {
    let Some(net) = config.namespaces.joined(LinuxNamespaceType::Network) else {
        return Ok(());
    };
    let first_net = config
        .linux
        .sysctl
        .iter()
        .find(|s| s.owner == SysctlNs::Net);
    match first_net {
        Some(s) if is_own_netns(net) => Err(Error::Refused {
            key: s.key.clone(),
            reason: "not allowed in the host's network namespace (the joined one is berth's own)"
                .into(),
        }),
        _ => Ok(()),
    }
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
pub fn apply(config: &Config) -> Result<(), Error> {
    let Some(first) = config.linux.sysctl.first() else {
        return Ok(());
    };
    let proc = Proc::open(Path::new("/proc")).map_err(|source| Error::Proc {
        key: first.key.clone(),
        source,
    })?;
    for s in &config.linux.sysctl {
        let rel = Path::new("sys").join(&s.path);
        proc.write(&rel.to_string_lossy(), &s.value)
            .map_err(|source| Error::Proc {
                key: s.key.clone(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(nss: serde_json::Value) -> Config {
        let raw = serde_json::json!({
            "ociVersion": "1.3.0", "root": {"path": "r"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": nss, "sysctl": {"net.ipv4.ip_forward": "1"}}
        });
        Config::from_spec(Path::new("c"), serde_json::from_value(raw).unwrap()).unwrap()
    }

    #[test]
    fn joining_berths_own_netns_is_refused() {
        let own = config(serde_json::json!([{"type": "network", "path": "/proc/self/ns/net"}]));
        let e = validate(&own).unwrap_err().to_string();
        assert!(
            e.contains("net.ipv4.ip_forward") && e.contains("berth's own"),
            "{e}"
        );
        validate(&config(serde_json::json!([{"type": "network"}]))).unwrap();
    }
}
