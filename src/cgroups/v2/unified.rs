//! `linux.resources.unified`: raw cgroup v2 key/values. Every key must name an interface file that exists in the
//! container's cgroup (so a typo or a controller that is not enabled is an error, not a silently created file), and
//! keys are plain file names: no `/`, no `..`, and never the cgroup core files that move processes or change the
//! hierarchy.

use std::collections::HashMap;
use std::path::Path;

use crate::cgroups::{fs, Error, Result};

fn bad(key: &str, reason: &str) -> Error {
    Error::BadValue {
        resource: "unified",
        reason: format!("key {key:?}: {reason}"),
    }
}

/// Checks a key without touching the filesystem.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('/') || key.contains('\0') || key == "." || key == ".." {
        return Err(bad(key, "must be a file name of the cgroup (no /, no ..)"));
    }
    let Some((controller, _)) = key.split_once('.') else {
        return Err(bad(key, "is not a cgroup interface file (controller.name)"));
    };
    if controller == "cgroup"
        && matches!(
            key,
            "cgroup.procs"
                | "cgroup.threads"
                | "cgroup.subtree_control"
                | "cgroup.type"
                | "cgroup.kill"
        )
    {
        return Err(bad(key, "is managed by berth itself"));
    }
    Ok(())
}

pub fn apply(dir: &Path, values: &HashMap<String, String>) -> Result<()> {
    // Check every key first, so that one bad key changes nothing.
    let mut keys: Vec<&String> = values.keys().collect();
    keys.sort();
    for key in &keys {
        check_key(key)?;
        if !dir.join(key).is_file() {
            return Err(bad(
                key,
                &format!(
                    "{} does not exist (unknown key, or its controller is not enabled)",
                    dir.join(key).display()
                ),
            ));
        }
    }
    for key in keys {
        fs::write(dir, key, &values[key])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_interface_files() {
        for ok in [
            "memory.high",
            "pids.max",
            "cpu.weight.nice",
            "io.bfq.weight",
            "cgroup.freeze",
        ] {
            check_key(ok).unwrap();
        }
        for bad in [
            "",
            "..",
            ".",
            "../memory.max",
            "memory/max",
            "/etc/passwd",
            "nodot",
            "cgroup.procs",
            "cgroup.subtree_control",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_change_nothing() {
        let dir = std::env::temp_dir().join(format!("berth-unified-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.high"), "max").unwrap();
        let values = HashMap::from([
            ("memory.high".to_string(), "1000".to_string()),
            ("memory.nosuch".to_string(), "1".to_string()),
        ]);
        let err = apply(&dir, &values).unwrap_err();
        assert!(err.to_string().contains("memory.nosuch"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.high")).unwrap(),
            "max"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
