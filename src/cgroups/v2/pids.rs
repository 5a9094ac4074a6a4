//! v2 pids controller (the same files as v1).

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use super::need;
use crate::cgroups::stats::Stats;
use crate::cgroups::{fs, Result};

pub fn apply(dir: &Path, p: &LinuxPids) -> Result<()> {
    let Some(v) = crate::cgroups::v1::pids_value(p.limit()) else {
        return Ok(());
    };
    need(dir, "pids.max", "pids")?;
    fs::write(dir, "pids.max", &v)
}

pub fn stats(dir: &Path, s: &mut Stats) {
    s.pids.current = fs::read_u64(dir, "pids.current");
    s.pids.limit = match fs::read_u64(dir, "pids.max") {
        u64::MAX => 0,
        l => l,
    };
}
