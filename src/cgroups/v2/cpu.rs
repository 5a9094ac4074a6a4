//! v2 cpu and cpuset controllers: cpu.weight (from the spec's shares), cpu.max, cpu.max.burst, cpu.idle,
//! cpuset.cpus/mems. Realtime scheduling has no v2 interface: refused when set.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::need;
use crate::cgroups::convert::{cpu_max, shares_to_weight};
use crate::cgroups::stats::{parse_cpu_list, Stats};
use crate::cgroups::{fs, Error, Result};

pub fn apply(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(Error::NotAvailable {
            resource: "cpu.realtimeRuntime",
            reason: "cgroup v2 has no realtime cpu controller".into(),
        });
    }
    let weight = c.shares().map(shares_to_weight).filter(|w| *w != 0);
    let max = cpu_max(
        c.quota().filter(|q| *q != 0),
        c.period().filter(|p| *p != 0),
    );
    if weight.is_some() || max.is_some() || c.burst().is_some() || c.idle().is_some() {
        need(dir, "cpu.weight", "cpu")?;
    }
    if let Some(w) = weight {
        fs::write(dir, "cpu.weight", &w.to_string())?;
    }
    if let Some(m) = max {
        fs::write(dir, "cpu.max", &m)?;
    }
    if let Some(b) = c.burst() {
        fs::write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        need(dir, "cpuset.cpus", "cpu.cpus")?;
    }
    if let Some(v) = cpus {
        fs::write(dir, "cpuset.cpus", v)?;
    }
    if let Some(v) = mems {
        fs::write(dir, "cpuset.mems", v)?;
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut Stats) {
    let st = fs::read_flat_keyed(dir, "cpu.stat");
    let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
    s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    s.cpu.throttling.throttled_time = us("throttled_usec");
    s.cpuset.cpus = parse_cpu_list(&fs::read(dir, "cpuset.cpus.effective").unwrap_or_default());
    s.cpuset.mems = parse_cpu_list(&fs::read(dir, "cpuset.mems.effective").unwrap_or_default());
}
