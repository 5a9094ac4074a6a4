//! v1 memory controller: limit, memsw (the spec's swap is memory+swap, as v1 has it), soft limit, TCP kernel memory,
//! swappiness, the OOM killer switch and use_hierarchy.

use oci_spec::runtime::LinuxMemory;

use super::Manager;
use crate::cgroups::convert::v1_limit;
use crate::cgroups::stats::{MemoryEntry, Stats};
use crate::cgroups::{fs, Error, Result};

pub fn apply(m: &Manager, mem: &LinuxMemory) -> Result<()> {
    // 0 means "not set" for the sizes, as in runc.
    let limit = mem.limit().filter(|v| *v != 0);
    let swap = mem.swap().filter(|v| *v != 0);
    let reservation = mem.reservation().filter(|v| *v != 0);
    let kernel_tcp = mem.kernel_tcp().filter(|v| *v != 0);
    let anything = limit.is_some()
        || swap.is_some()
        || reservation.is_some()
        || kernel_tcp.is_some()
        || mem.swappiness().is_some()
        || mem.disable_oom_killer().is_some()
        || mem.use_hierarchy().is_some();
    if !anything {
        return Ok(());
    }
    let dir = m.controller("memory.limit_in_bytes", "memory", "memory")?;
    if let (Some(true), Some(l)) = (mem.check_before_update(), limit) {
        let usage = fs::read_u64(dir, "memory.usage_in_bytes");
        if l > 0 && (l as u64) < usage {
            return Err(Error::BadValue {
                resource: "memory.limit",
                reason: format!("{l} is below the current usage {usage} (checkBeforeUpdate)"),
            });
        }
    }
    let has_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    // An unlimited memory limit with no word on swap lifts the memory+swap limit too (runc does the same): a
    // memsw limit below it would make the kernel refuse the new memory limit.
    let swap = match (limit, swap) {
        (Some(-1), None) if has_memsw => Some(-1),
        _ => swap,
    };
    match swap {
        Some(s) if !has_memsw && s > 0 => {
            return Err(Error::NotAvailable {
                resource: "memory.swap",
                reason: "swap accounting is off in this kernel (memory.memsw.* is missing)".into(),
            })
        }
        Some(s) if has_memsw => {
            // (Below -1, or below the limit of the same config, was refused at load.)
            // memsw must stay >= limit at every step: raise memsw first, lower it last.
            let current = fs::read_u64(dir, "memory.memsw.limit_in_bytes");
            if s < 0 || s as u64 >= current {
                fs::write(dir, "memory.memsw.limit_in_bytes", &v1_limit(s))?;
                if let Some(l) = limit {
                    fs::write(dir, "memory.limit_in_bytes", &v1_limit(l))?;
                }
            } else {
                if let Some(l) = limit {
                    fs::write(dir, "memory.limit_in_bytes", &v1_limit(l))?;
                }
                fs::write(dir, "memory.memsw.limit_in_bytes", &v1_limit(s))?;
            }
        }
        _ => {
            if let Some(l) = limit {
                fs::write(dir, "memory.limit_in_bytes", &v1_limit(l))?;
            }
        }
    }
    if let Some(r) = reservation {
        fs::write(dir, "memory.soft_limit_in_bytes", &v1_limit(r))?;
    }
    // linux.resources.memory.kernel is ignored, as runc does: kernel memory limits are gone from current kernels.
    if let Some(k) = kernel_tcp {
        fs::write(dir, "memory.kmem.tcp.limit_in_bytes", &v1_limit(k))?;
    }
    if let Some(sw) = mem.swappiness() {
        fs::write(dir, "memory.swappiness", &sw.to_string())?;
    }
    if let Some(disable) = mem.disable_oom_killer() {
        fs::write(dir, "memory.oom_control", if disable { "1" } else { "0" })?;
    }
    if let Some(h) = mem.use_hierarchy() {
        fs::write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

fn entry(dir: &std::path::Path, prefix: &str) -> MemoryEntry {
    MemoryEntry {
        limit: fs::read_u64(dir, &format!("{prefix}limit_in_bytes")),
        usage: fs::read_u64(dir, &format!("{prefix}usage_in_bytes")),
        max: fs::read_u64(dir, &format!("{prefix}max_usage_in_bytes")),
        failcnt: fs::read_u64(dir, &format!("{prefix}failcnt")),
    }
}

pub fn stats(m: &Manager, s: &mut Stats) {
    let Some(dir) = m.dir_with("memory.stat") else {
        return;
    };
    s.memory.raw = fs::read_flat_keyed(dir, "memory.stat");
    s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    s.memory.usage = entry(dir, "memory.");
    s.memory.swap = entry(dir, "memory.memsw.");
    s.memory.kernel = entry(dir, "memory.kmem.");
    s.memory.kernel_tcp = entry(dir, "memory.kmem.tcp.");
}
