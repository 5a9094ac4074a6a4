//! config.json: loading, and its translation into berth's own validated [`Config`], once, before anything is made.
//! Every refusal names the config field; everything later in berth takes the translated types and may assume
//! they are sane. A leaf: checks that need the kernel stay with the module that touches it.

pub mod attrs;
mod default;
mod fields;
#[cfg(test)]
pub(crate) mod fuzz;
mod hooks;
mod id;
mod linux;
pub mod mount_options;
mod mounts;
mod namespaces;
mod process;
mod resources;
pub mod seccomp;
mod sysctl;
mod validate;

pub use default::default_config;
pub use hooks::{Hook, Hooks, Phase};
pub use id::validate_id;
pub use linux::{Device, Linux};
pub use mounts::{Mapping, Mount};
pub use namespaces::{clone_flag, Namespaces, NsPath};
pub use process::{name_decode_error, Capabilities, CpuList, Process, Rlimit, User};
#[cfg(test)]
pub use resources::{default_device_rules, parse_device_rules};
pub use resources::{DeviceRule, Resources, ACC_MKNOD, ACC_READ, ACC_WRITE};
pub use sysctl::{Sysctl, SysctlNs};
pub use validate::namespace_kind;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Root, Spec};

/// The oldest and newest runtime-spec versions whose configs berth accepts (1.0.0 ..= 1.3.x).
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The runtime-spec version berth implements and reports in `state`.
pub const OCI_VERSION: &str = "1.3.0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error(
        "{path}: unsupported ociVersion {version:?} (berth supports {OCI_VERSION_MIN} to 1.3.x)"
    )]
    Version { path: PathBuf, version: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("rootfs {path}: {source}")]
    Rootfs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid container id {id:?}: {reason}")]
    Id { id: String, reason: &'static str },
}

/// A loaded, validated bundle.
#[derive(Debug)]
pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs path (root.path resolved against the bundle).
    pub rootfs: PathBuf,
    pub config: Config,
    /// config.json exactly as read: saved into the state dir so later commands see what create saw.
    pub raw: Vec<u8>,
}

/// Loads `<dir>/config.json` and validates it for `create`.
pub fn load_bundle(dir: &Path) -> Result<Bundle, Error> {
    let dir = std::fs::canonicalize(dir).map_err(|source| Error::Bundle {
        path: dir.to_path_buf(),
        source,
    })?;
    let config = dir.join("config.json");
    let raw = std::fs::read(&config).map_err(|source| Error::Read {
        path: config.clone(),
        source,
    })?;
    let mut spec = parse(&config, &raw)?;
    anchor_bind_sources(&mut spec, &dir);
    let translated = Config::from_spec(&config, spec)?;
    let root = translated.root.path();
    let rootfs = if root.is_absolute() {
        root.clone()
    } else {
        dir.join(root)
    };
    let meta = std::fs::metadata(&rootfs).map_err(|source| Error::Rootfs {
        path: rootfs.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::Rootfs {
            path: rootfs,
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    Ok(Bundle {
        dir,
        rootfs,
        config: translated,
        raw,
    })
}

/// config.json translated for `create`: what validation guaranteed, the types say.
#[derive(Debug)]
pub struct Config {
    /// `None` when absent or empty.
    pub hostname: Option<String>,
    /// `None` when absent or empty.
    pub domainname: Option<String>,
    pub annotations: HashMap<String, String>,
    pub root: Root,
    /// `process`, translated.
    pub process: Process,
    pub linux: Linux,
    /// `mounts`, in config order, options parsed.
    pub mounts: Vec<Mount>,
    /// `hooks`, by phase.
    pub hooks: Hooks,
    /// The namespace plan of `linux.namespaces`.
    pub namespaces: Namespaces,
}

impl Config {
    /// Validates a decoded config.json (at `path`, for the errors) and moves its parts into place.
    pub fn from_spec(path: &Path, mut spec: Spec) -> Result<Config, Error> {
        let invalid = |reason: String| Error::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if !version_supported(spec.version()) {
            return Err(Error::Version {
                path: path.to_path_buf(),
                version: spec.version().clone(),
            });
        }
        let root = spec
            .root_mut()
            .take()
            .ok_or_else(|| invalid("root is missing".into()))?;
        let process = spec
            .process_mut()
            .take()
            .ok_or_else(|| invalid("process is missing".into()))?;
        let mut linux = spec
            .linux_mut()
            .take()
            .ok_or_else(|| invalid("linux is missing: berth runs Linux containers".into()))?;
        drop_empty_namespace_paths(&mut linux);
        validate::check(&spec, &root, &linux).map_err(invalid)?;
        let process = Process::from_oci(process).map_err(invalid)?;
        let namespaces = Namespaces::from_linux(&linux).map_err(invalid)?;
        let mounts = mounts::translate(spec.mounts_mut().take(), &linux).map_err(invalid)?;
        let linux = Linux::from_oci(linux, &namespaces).map_err(invalid)?;
        let hooks = Hooks::from_oci(spec.hooks_mut().take());
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(Config {
            hostname: nonempty(spec.hostname_mut().take()),
            domainname: nonempty(spec.domainname_mut().take()),
            annotations: spec.annotations_mut().take().unwrap_or_default(),
            root,
            process,
            linux,
            mounts,
            hooks,
            namespaces,
        })
    }
}

/// A namespace whose `path` is `""` has none: a new namespace, as runc (Go's empty string) reads it.
fn drop_empty_namespace_paths(linux: &mut oci_spec::runtime::Linux) {
    let Some(mut nss) = linux.namespaces().clone() else {
        return;
    };
    if nss
        .iter()
        .any(|n| n.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()))
    {
        for n in &mut nss {
            if n.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                n.set_path(None);
            }
        }
        linux.set_namespaces(Some(nss));
    }
}

/// A relative bind source (idmapped ones included) is relative to the bundle (runtime-spec; runc runs from the
/// bundle directory), whatever berth's own working directory: made absolute once, here. Other filesystems' sources
/// are names (`proc`, `tmpfs`), left as they are.
fn anchor_bind_sources(spec: &mut Spec, bundle: &Path) {
    let Some(mut mounts) = spec.mounts().clone() else {
        return;
    };
    for m in &mut mounts {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if let Some(src) = m.source().as_ref().filter(|s| bind && s.is_relative()) {
            let anchored = bundle.join(src);
            m.set_source(Some(anchored));
        }
    }
    spec.set_mounts(Some(mounts));
}

/// Parses config.json bytes in one pass; serde's message carries the line and column of the fault (`null`, `[]`
/// and the like fail as "invalid type ... expected struct Spec"; `{}` parses and fails validation).
pub fn parse(path: &Path, raw: &[u8]) -> Result<Spec, Error> {
    // serde's derived structs also accept a JSON array (fields by position, all defaulted here): refuse anything
    // but an object up front, which costs one byte of look-ahead, not a second parse.
    let first = raw.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            reason: "the top level must be a JSON object".into(),
        });
    }
    let err = |e: serde_json::Error| Error::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // Only a config naming the two scheduler flags oci-spec spells differently takes the slower path.
    let renamed = |name: &[u8]| raw.windows(name.len()).any(|w| w == name);
    if renamed(b"SCHED_FLAG_RESET_ON_FORK") || renamed(b"SCHED_FLAG_DL_OVERRUN") {
        let mut v: serde_json::Value = serde_json::from_slice(raw).map_err(err)?;
        if let Some(p) = v.get_mut("process") {
            translate_scheduler_flags(p);
        }
        return serde::Deserialize::deserialize(&v).map_err(|e| named(path, &v, err(e)));
    }
    serde_json::from_slice(raw).map_err(|e| match serde_json::from_slice(raw) {
        Ok(v) => named(path, &v, err(e)),
        Err(_) => err(e),
    })
}

/// A decoding error, or (read again, only once decoding failed) the field it comes from where serde's message
/// names neither field nor position (an unknown capability or rlimit type).
fn named(path: &Path, v: &serde_json::Value, e: Error) -> Error {
    let process = v.get("process").and_then(name_decode_error);
    let policy = || {
        v.get("linux")
            .and_then(|l| l.get("memoryPolicy"))
            .and_then(attrs::name_memory_policy_decode_error)
    };
    match process.or_else(policy) {
        Some(reason) => Error::Invalid {
            path: path.to_path_buf(),
            reason,
        },
        None => e,
    }
}

/// Is `version` a 1.0.x ..= 1.3.x release (pre-release suffixes such as `-dev` allowed)?
pub fn version_supported(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || p.parse::<u32>().is_err())
    {
        return false;
    }
    let major: u32 = parts[0].parse().unwrap_or(0);
    let minor: u32 = parts[1].parse().unwrap_or(99);
    major == 1 && minor <= 3
}

/// The runtime-spec's flag names (SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_DL_OVERRUN, ...) differ from the ones
/// oci-spec 0.10 decodes (SCHED_RESET_ON_FORK, SCHED_FLAG_D_L_OVERRUN, ...): rewrite them in a `process` object
/// before it is decoded, so the spec's names are the ones accepted.
pub fn translate_scheduler_flags(process: &mut serde_json::Value) {
    let Some(flags) = process
        .get_mut("scheduler")
        .and_then(|s| s.get_mut("flags"))
        .and_then(|f| f.as_array_mut())
    else {
        return;
    };
    for f in flags.iter_mut() {
        let decoded = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = serde_json::Value::from(decoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},"linux":{"namespaces":[{"type":"mount"}]}}"#;

    #[test]
    fn accepts_every_1_0_to_1_3_version() {
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.7+x"] {
            assert!(version_supported(v), "{v}");
        }
        for v in ["0.9.0", "1.4.0", "2.0.0", "1.0", "", "abc", "1.x.0"] {
            assert!(!version_supported(v), "{v}");
        }
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse(Path::new("/b/config.json"), b"{\n  \"ociVersion\": ,\n}").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/b/config.json") && msg.contains("line 2"),
            "{msg}"
        );
    }

    #[test]
    fn non_objects_are_rejected() {
        for raw in ["null", "[]", "42", "\"x\""] {
            let err = parse(Path::new("c"), raw.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("JSON object"), "{raw}: {err}");
        }
        let empty = parse(Path::new("c"), b"{}").unwrap();
        let err = Config::from_spec(Path::new("c"), empty).unwrap_err();
        assert!(err.to_string().contains("ociVersion"), "{err}");
    }

    #[test]
    fn wrong_types_are_errors_with_position() {
        let raw =
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":"sh","user":{"uid":0,"gid":0}}}"#;
        let msg = parse(Path::new("c"), raw.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("column"), "{msg}");
    }

    fn validate_str(raw: &str) -> Result<Config, Error> {
        let spec = parse(Path::new("c"), raw.as_bytes())?;
        Config::from_spec(Path::new("c"), spec)
    }

    #[test]
    fn minimal_config_is_valid() {
        validate_str(MINIMAL).unwrap();
    }

    #[test]
    fn validation_catches_missing_pieces() {
        let cases = [
            (MINIMAL.replace("1.0.2", "9.0.0"), "unsupported ociVersion"),
            (
                MINIMAL.replace(r#""root":{"path":"rootfs"},"#, ""),
                "root is missing",
            ),
            (MINIMAL.replace(r#"["sh"]"#, "[]"), "process.args"),
            (
                MINIMAL.replace(r#""cwd":"/""#, r#""cwd":"rel""#),
                "absolute",
            ),
            (
                MINIMAL.replace(r#","linux":{"namespaces":[{"type":"mount"}]}"#, ""),
                "linux is missing",
            ),
        ];
        for (raw, want) in cases {
            let msg = validate_str(&raw).unwrap_err().to_string();
            assert!(msg.contains(want), "{msg} should contain {want}");
        }
    }

    #[test]
    fn huge_hostname_is_refused() {
        let raw = MINIMAL.replace(
            r#""root":"#,
            &format!(r#""hostname":"{}","root":"#, "a".repeat(1 << 20)),
        );
        let msg = validate_str(&raw).unwrap_err().to_string();
        assert!(msg.contains("hostname"), "{msg}");
    }

    #[test]
    fn a_valid_config_translates_with_its_parts_moved_out() {
        let c = validate_str(MINIMAL).unwrap();
        assert_eq!(c.root.path(), Path::new("rootfs"));
        assert_eq!(c.process.args, ["sh"]);
        assert!(
            c.namespaces.mount
                && c.namespaces.clone_flags
                    == clone_flag(oci_spec::runtime::LinuxNamespaceType::Mount)
        );
        assert!(c.hostname.is_none() && c.domainname.is_none() && c.annotations.is_empty());
        assert!(c.hooks.is_empty() && c.mounts.is_empty());
        // The device rules every container gets are there without any in the config.
        assert_eq!(c.linux.resources.devices().unwrap(), default_device_rules());
    }

    #[test]
    fn each_refusal_names_its_field() {
        let linux = |json: &str| {
            MINIMAL.replace(
                r#""linux":{"namespaces":[{"type":"mount"}]}"#,
                &format!(r#""linux":{json}"#),
            )
        };
        let cases = [
            (
                MINIMAL.replace(r#""cwd":"/""#, r#""cwd":"rel""#),
                "process.cwd \"rel\": must be an absolute path",
            ),
            (
                MINIMAL.replace(r#""args":["sh"]"#, r#""args":["sh"],"env":["A=1","B"]"#),
                "process.env[1] \"B\": not KEY=value",
            ),
            (
                MINIMAL.replace(
                    r#""args":["sh"]"#,
                    r#""args":["sh"],"capabilities":{"bounding":["CAP_KILL","CAP_BOGUS"]}"#,
                ),
                "c: process.capabilities.bounding[1] \"CAP_BOGUS\": unknown capability",
            ),
            (
                MINIMAL.replace(
                    r#""args":["sh"]"#,
                    r#""args":["sh"],"rlimits":[{"type":"RLIMIT_CORE","soft":2,"hard":1}]"#,
                ),
                "process.rlimits[0] RLIMIT_CORE: soft limit 2 is above the hard limit 1",
            ),
            (
                MINIMAL.replace(
                    r#""root":"#,
                    r#""mounts":[{"destination":"/a"},{"destination":""}],"root":"#,
                ),
                "mounts[1].destination: must not be empty",
            ),
            (
                MINIMAL.replace(
                    r#""root":"#,
                    r#""mounts":[{"destination":"/a"},{"destination":"/t","type":"proc","options":["tmpcopyup"]}],"root":"#,
                ),
                "mounts[1] \"/t\": tmpcopyup is only valid for tmpfs",
            ),
            (
                linux(r#"{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#),
                "linux.namespaces[1]: lists the pid namespace twice",
            ),
            (
                linux(r#"{"namespaces":[{"type":"network","path":"ns"},{"type":"mount","path":""}]}"#),
                "linux.namespaces[0].path \"ns\"",
            ),
            (
                linux(
                    r#"{"namespaces":[{"type":"mount"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
                ),
                "linux.uidMappings/gidMappings: need a user namespace",
            ),
            (
                linux(r#"{"namespaces":[{"type":"mount"},{"type":"user"}]}"#),
                "a new user namespace needs both",
            ),
            (
                linux(
                    r#"{"namespaces":[{"type":"mount"}],"timeOffsets":{"monotonic":{"secs":1}}}"#,
                ),
                "linux.timeOffsets: needs a time namespace",
            ),
            (
                MINIMAL.replace(r#""root":"#, r#""hostname":"h","root":"#),
                "hostname: needs a new uts namespace",
            ),
            (
                MINIMAL.replace(r#""root":"#, r#""domainname":"d","root":"#),
                "domainname: needs a new uts namespace",
            ),
            (
                linux(
                    r#"{"namespaces":[{"type":"mount"}],"devices":[{"path":"/dev/a","type":"c"},{"path":"/etc/x","type":"c"}]}"#,
                ),
                "linux.devices[1].path \"/etc/x\": device paths must be under /dev",
            ),
            (
                linux(r#"{"namespaces":[{"type":"mount"}],"sysctl":{"net.ipv4.ip_forward":"1"}}"#),
                "linux.sysctl \"net.ipv4.ip_forward\": not allowed in the host's network namespace",
            ),
            (
                linux(
                    r#"{"namespaces":[{"type":"mount"}],"resources":{"memory":{"limit":8192,"swap":4096}}}"#,
                ),
                "linux.resources.memory.swap: memory+swap (4096) must not be below the memory limit (8192)",
            ),
            (
                linux(r#"{"namespaces":[{"type":"mount"}],"rootfsPropagation":"sideways"}"#),
                "linux.rootfsPropagation \"sideways\": unknown propagation",
            ),
        ];
        for (raw, want) in cases {
            let msg = validate_str(&raw).unwrap_err().to_string();
            assert!(msg.contains(want), "{msg} should contain {want}");
        }
        // An empty namespace path is none: a new namespace.
        let c = validate_str(&linux(r#"{"namespaces":[{"type":"mount","path":""}]}"#)).unwrap();
        assert!(c
            .namespaces
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWNS));
        // A relative destination is relative to / (runtime-spec).
        let rel = MINIMAL.replace(
            r#""root":"#,
            r#""mounts":[{"destination":"tmp/m","type":"tmpfs","source":"tmpfs"}],"root":"#,
        );
        assert_eq!(
            validate_str(&rel).unwrap().mounts[0].destination,
            Path::new("/tmp/m")
        );
        // Without a mount namespace the container is chrooted into its rootfs (as runc does).
        validate_str(&linux(r#"{"namespaces":[{"type":"pid"}]}"#)).unwrap();
    }
}
