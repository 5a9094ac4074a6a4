//! Writing `linux.resources` into v2 interface files.

use oci_spec::runtime::LinuxResources;

use super::v2::Manager;
use super::{fs, Result};

pub fn apply(m: &Manager, r: &LinuxResources) -> Result<()> {
    let dir = m.dir();
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".into()
        };
        fs::write(dir, "pids.max", &value)?;
    }
    if let Some(mem) = r.memory() {
        if let Some(limit) = mem.limit() {
            let value = if limit < 0 {
                "max".into()
            } else {
                limit.to_string()
            };
            fs::write(dir, "memory.max", &value)?;
        }
    }
    Ok(())
}
