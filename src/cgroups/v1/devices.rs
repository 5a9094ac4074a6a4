//! v1 devices controller: deny everything, then write the rules in order (the last matching rule wins).

use super::Manager;
use crate::cgroups::devices::Rule;
use crate::cgroups::{fs, Result};

pub fn apply(m: &Manager, rules: &[Rule]) -> Result<()> {
    let dir = m.controller("devices.allow", "devices", "devices")?;
    fs::write(dir, "devices.deny", "a")?;
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(dir, file, &r.v1_line())?;
    }
    Ok(())
}
