//! v1 cpu and cpuset controllers: shares, CFS quota/period/burst, RT runtime/period, idle; cpus and mems.

use oci_spec::runtime::LinuxCpu;

use super::Manager;
use crate::cgroups::stats::{parse_cpu_list, Stats};
use crate::cgroups::{fs, Result};

pub fn apply(m: &Manager, c: &LinuxCpu) -> Result<()> {
    let shares = c.shares().filter(|v| *v != 0);
    let quota = c.quota().filter(|v| *v != 0);
    let period = c.period().filter(|v| *v != 0);
    let rt_runtime = c.realtime_runtime().filter(|v| *v != 0);
    let rt_period = c.realtime_period().filter(|v| *v != 0);
    let cpu_set = shares.is_some()
        || quota.is_some()
        || period.is_some()
        || c.burst().is_some()
        || rt_runtime.is_some()
        || rt_period.is_some()
        || c.idle().is_some();
    if cpu_set {
        let dir = m.controller("cpu.shares", "cpu", "cpu")?;
        if let Some(s) = shares {
            fs::write(dir, "cpu.shares", &s.to_string())?;
        }
        // The kernel checks quota against period (and burst against quota) as each is written: when the first
        // order is refused, the other one is right.
        if let Some(p) = period {
            let quota_value = quota.map(|q| if q < 0 { -1 } else { q }.to_string());
            if fs::write(dir, "cpu.cfs_period_us", &p.to_string()).is_err() {
                if let Some(q) = &quota_value {
                    fs::write(dir, "cpu.cfs_quota_us", q)?;
                }
                fs::write(dir, "cpu.cfs_period_us", &p.to_string())?;
            } else if let Some(q) = &quota_value {
                fs::write(dir, "cpu.cfs_quota_us", q)?;
            }
        } else if let Some(q) = quota {
            fs::write(
                dir,
                "cpu.cfs_quota_us",
                &if q < 0 { -1 } else { q }.to_string(),
            )?;
        }
        if let Some(b) = c.burst() {
            fs::write(dir, "cpu.cfs_burst_us", &b.to_string())?;
        }
        // The same for the real-time pair: a period shorter than the current runtime is refused until the runtime
        // is lowered (runc issue 4094).
        if let Some(p) = rt_period {
            if fs::write(dir, "cpu.rt_period_us", &p.to_string()).is_err() {
                if let Some(r) = rt_runtime {
                    fs::write(dir, "cpu.rt_runtime_us", &r.to_string())?;
                }
                fs::write(dir, "cpu.rt_period_us", &p.to_string())?;
            } else if let Some(r) = rt_runtime {
                fs::write(dir, "cpu.rt_runtime_us", &r.to_string())?;
            }
        } else if let Some(r) = rt_runtime {
            fs::write(dir, "cpu.rt_runtime_us", &r.to_string())?;
        }
        if let Some(i) = c.idle() {
            fs::write(dir, "cpu.idle", &i.to_string())?;
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let dir = m.controller("cpuset.cpus", "cpu.cpus", "cpuset")?;
        if let Some(v) = cpus {
            fs::write(dir, "cpuset.cpus", v)?;
        }
        if let Some(v) = mems {
            fs::write(dir, "cpuset.mems", v)?;
        }
    }
    Ok(())
}

/// USER_HZ, in which cpuacct.stat counts.
const CLOCK_TICKS: u64 = 100;

pub fn stats(m: &Manager, s: &mut Stats) {
    if let Some(dir) = m.dir_with("cpuacct.usage") {
        let u = &mut s.cpu.usage;
        u.total = fs::read_u64(dir, "cpuacct.usage");
        let list = |f: &str| -> Vec<u64> {
            fs::read(dir, f)
                .map(|t| {
                    t.split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        u.percpu = list("cpuacct.usage_percpu");
        u.percpu_kernel = list("cpuacct.usage_percpu_sys");
        u.percpu_user = list("cpuacct.usage_percpu_user");
        let st = fs::read_flat_keyed(dir, "cpuacct.stat");
        let ns = 1_000_000_000 / CLOCK_TICKS;
        u.user = st.get("user").copied().unwrap_or(0) * ns;
        u.kernel = st.get("system").copied().unwrap_or(0) * ns;
    }
    if let Some(dir) = m.dir_with("cpu.stat") {
        let st = fs::read_flat_keyed(dir, "cpu.stat");
        let t = &mut s.cpu.throttling;
        t.periods = st.get("nr_periods").copied().unwrap_or(0);
        t.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        t.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(dir) = m.dir_with("cpuset.cpus") {
        s.cpuset.cpus = parse_cpu_list(&fs::read(dir, "cpuset.effective_cpus").unwrap_or_default());
        s.cpuset.mems = parse_cpu_list(&fs::read(dir, "cpuset.effective_mems").unwrap_or_default());
    }
}
