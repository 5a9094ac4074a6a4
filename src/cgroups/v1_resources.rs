//! Writing `linux.resources` into v1 controller files.

use oci_spec::runtime::LinuxResources;

use super::v1::Manager;
use super::{fs, Result};

pub fn apply(m: &Manager, r: &LinuxResources) -> Result<()> {
    if let Some(pids) = r.pids() {
        if let Some(dir) = m.dir_with("pids.max") {
            let limit = pids.limit();
            let value = if limit > 0 {
                limit.to_string()
            } else {
                "max".into()
            };
            fs::write(dir, "pids.max", &value)?;
        }
    }
    if let Some(mem) = r.memory() {
        if let Some(dir) = m.dir_with("memory.limit_in_bytes") {
            if let Some(limit) = mem.limit() {
                fs::write(dir, "memory.limit_in_bytes", &limit.to_string())?;
            }
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(dir) = m.dir_with("cpu.shares") {
            if let Some(shares) = cpu.shares() {
                fs::write(dir, "cpu.shares", &shares.to_string())?;
            }
        }
    }
    Ok(())
}
