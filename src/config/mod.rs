//! config.json: loading, version check and validation. Everything later in berth may assume a `Bundle` is sane.

mod default;
mod fields;
#[cfg(test)]
pub(crate) mod fuzz;
mod id;

pub use default::default_config;
pub use id::validate_id;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

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
    pub spec: Spec,
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
    validate(&config, &spec)?;
    anchor_bind_sources(&mut spec, &dir);
    let root = spec.root().as_ref().expect("validated");
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
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
        spec,
        raw,
    })
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
        return serde_json::from_value(v).map_err(err);
    }
    serde_json::from_slice(raw).map_err(err)
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

fn validate(path: &Path, spec: &Spec) -> Result<(), Error> {
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
    match spec.root() {
        None => return Err(invalid("root is missing".into())),
        Some(root) if root.path().as_os_str().is_empty() => {
            return Err(invalid("root.path is empty".into()))
        }
        Some(_) => {}
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process is missing".into()))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(invalid("process.args must name a program".into())),
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    if let Some(env) = process.env() {
        if let Some(bad) = env
            .iter()
            .find(|e| !e.contains('=') || e.starts_with('=') || e.contains('\0'))
        {
            return Err(invalid(format!(
                "process.env entry {bad:?} is not KEY=value"
            )));
        }
    }
    if spec.linux().is_none() {
        return Err(invalid(
            "linux is missing: berth runs Linux containers".into(),
        ));
    }
    if let Some(host) = spec.hostname() {
        // The kernel limit (HOST_NAME_MAX); caught here so the error names the config, not sethostname.
        if host.len() > 64 {
            return Err(invalid(format!(
                "hostname is {} bytes long; the limit is 64",
                host.len()
            )));
        }
    }
    if let Some(mounts) = spec.mounts() {
        if let Some(m) = mounts.iter().find(|m| !m.destination().is_absolute()) {
            return Err(invalid(format!(
                "mount destination {:?} must be absolute",
                m.destination()
            )));
        }
    }
    crate::namespaces::validate(spec).map_err(invalid)?;
    fields::check(spec).map_err(invalid)?;
    Ok(())
}

#[cfg(test)]
pub fn validate_for_tests(spec: &Spec) -> Result<(), Error> {
    validate(Path::new("config.json"), spec)
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
        let err = validate(Path::new("c"), &empty).unwrap_err();
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

    fn validate_str(raw: &str) -> Result<(), Error> {
        let spec = parse(Path::new("c"), raw.as_bytes())?;
        validate(Path::new("c"), &spec)
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
}
