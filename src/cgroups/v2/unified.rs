//! `linux.resources.unified`: raw cgroup v2 key/values. Every key must name an interface file that exists in the
//! container's cgroup (so a typo or a controller that is not enabled is an error, not a silently created file);
//! that keys are plain file names (no `/`, no `..`, never the core files that move processes or change the
//! hierarchy) was checked at load (`config::Resources`).

use std::collections::HashMap;
use std::path::Path;

use crate::cgroups::{fs, Error, Result};

fn bad(key: &str, reason: &str) -> Error {
    Error::BadValue {
        resource: "unified",
        reason: format!("key {key:?}: {reason}"),
    }
}

pub fn apply(dir: &Path, values: &HashMap<String, String>) -> Result<()> {
    // Check every key first, so that one bad key changes nothing.
    let mut keys: Vec<&String> = values.keys().collect();
    keys.sort();
    for key in &keys {
        // (The key's syntax was checked at load: a plain file name.)
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
