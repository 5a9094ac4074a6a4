//! v1 pids controller.

use oci_spec::runtime::LinuxPids;

use super::Manager;
use crate::cgroups::stats::Stats;
use crate::cgroups::{fs, Result};

/// The pids.max value of a limit: 0 is "not set" (as runc reads it), negative is unlimited.
pub fn value(limit: i64) -> Option<String> {
    match limit {
        0 => None,
        l if l < 0 => Some("max".into()),
        l => Some(l.to_string()),
    }
}

pub fn apply(m: &Manager, p: &LinuxPids) -> Result<()> {
    let Some(v) = value(p.limit()) else {
        return Ok(());
    };
    let dir = m.controller("pids.max", "pids", "pids")?;
    fs::write(dir, "pids.max", &v)
}

pub fn stats(m: &Manager, s: &mut Stats) {
    if let Some(dir) = m.dir_with("pids.current") {
        s.pids.current = fs::read_u64(dir, "pids.current");
        s.pids.limit = match fs::read_u64(dir, "pids.max") {
            u64::MAX => 0,
            l => l,
        };
    }
}
