//! v2 memory controller: memory.max, memory.low (the spec's reservation), memory.swap.max (the spec's swap is
//! memory+swap: converted). v1-only knobs: kernel and kernelTCP are ignored as runc does (deprecated),
//! useHierarchy is how v2 always works, swappiness and disableOOMKiller have no v2 file and are refused when set.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::need;
use crate::cgroups::convert::{swap_to_v2, v2_limit};
use crate::cgroups::stats::{MemoryEntry, Stats};
use crate::cgroups::{fs, Error, Result};

pub fn apply(dir: &Path, mem: &LinuxMemory) -> Result<()> {
    let limit = mem.limit().filter(|v| *v != 0);
    let swap = mem.swap().filter(|v| *v != 0);
    let reservation = mem.reservation().filter(|v| *v != 0);
    if let Some(sw) = mem.swappiness() {
        // runc treats a swappiness of 0 and unset alike on v2, so that default configs work.
        if sw != 0 {
            return Err(Error::NotAvailable {
                resource: "memory.swappiness",
                reason: "cgroup v2 has no per-cgroup swappiness".into(),
            });
        }
    }
    if mem.disable_oom_killer() == Some(true) {
        return Err(Error::NotAvailable {
            resource: "memory.disableOOMKiller",
            reason: "cgroup v2 cannot disable the OOM killer".into(),
        });
    }
    if limit.is_none() && swap.is_none() && reservation.is_none() {
        return Ok(());
    }
    need(dir, "memory.max", "memory")?;
    if let (Some(true), Some(l)) = (mem.check_before_update(), limit) {
        let usage = fs::read_u64(dir, "memory.current");
        if l > 0 && (l as u64) < usage {
            return Err(Error::BadValue {
                resource: "memory.limit",
                reason: format!("{l} is below the current usage {usage} (checkBeforeUpdate)"),
            });
        }
    }
    // Without a new limit, the swap is relative to the one in force (an `update --memory-swap` alone).
    let effective_limit = limit.or_else(|| match fs::read(dir, "memory.max") {
        Ok(s) if s.trim() == "max" => Some(-1),
        Ok(s) => s.trim().parse().ok(),
        Err(_) => None,
    });
    let swap_value = match swap {
        Some(s) => swap_to_v2(s, effective_limit)?,
        None => None,
    };
    if let Some(v) = &swap_value {
        if !fs::write_if_exists(dir, "memory.swap.max", v)? && v != "max" {
            return Err(Error::NotAvailable {
                resource: "memory.swap",
                reason: "swap accounting is off in this kernel (memory.swap.max is missing)".into(),
            });
        }
    }
    if let Some(l) = limit {
        fs::write(dir, "memory.max", &v2_limit(l))?;
    }
    if let Some(r) = reservation {
        fs::write(dir, "memory.low", &v2_limit(r))?;
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut Stats) {
    if !dir.join("memory.current").exists() {
        return;
    }
    s.memory.raw = fs::read_flat_keyed(dir, "memory.stat");
    s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    let events = fs::read_flat_keyed(dir, "memory.events");
    s.memory.usage = MemoryEntry {
        limit: fs::read_u64(dir, "memory.max"),
        usage: fs::read_u64(dir, "memory.current"),
        max: fs::read_u64(dir, "memory.peak"),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // runc reports swap as memory+swap, as v1 did.
    let swap_current = fs::read_u64(dir, "memory.swap.current");
    let swap_max = fs::read_u64(dir, "memory.swap.max");
    s.memory.swap = MemoryEntry {
        limit: swap_max.saturating_add(s.memory.usage.limit),
        usage: swap_current + s.memory.usage.usage,
        max: 0,
        failcnt: 0,
    };
}
