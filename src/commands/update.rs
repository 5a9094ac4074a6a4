//! `update`: new resource limits for a live container, from `--resources FILE|-` (the spec's LinuxResources JSON)
//! and/or runc's flags (which win over the file for what they set).

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cli::{Cli, UpdateArgs};

pub fn run(cli: &Cli, a: &UpdateArgs) -> Result<i32> {
    let dir = super::existing(cli, &a.id)?;
    let base = match a.resources.as_deref() {
        None => LinuxResources::default(),
        Some(src) => read_resources(src)?,
    };
    let r = apply_flags(base, a)?;
    // The checks `create` makes at load, before anything is written; device rules are fixed at create time.
    let r = crate::config::Resources::for_update(r)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("container {}", a.id))?;
    crate::container::control::update(&dir, &r).with_context(|| format!("container {}", a.id))?;
    Ok(0)
}

fn read_resources(src: &str) -> Result<LinuxResources> {
    let mut raw = Vec::new();
    if src == "-" {
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("read resources from stdin")?;
    } else {
        raw = std::fs::read(src).with_context(|| format!("read {src}"))?;
    }
    serde_json::from_slice(&raw).map_err(|e| {
        let from = if src == "-" { "stdin" } else { src };
        anyhow!("resources from {from}: not a LinuxResources JSON object: {e}")
    })
}

/// Parses a memory size as runc does: bytes, or a number with a k, m, g, t or p suffix (powers of 1024,
/// optionally followed by `b` or `ib`); -1 is unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let unit = unit.trim_start();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid size {s:?}: use bytes or a k, m, g, t suffix"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("invalid size {s:?}: use bytes or a k, m, g, t suffix"))?;
    let bytes = n * mult;
    if !(0.0..9.2e18).contains(&bytes) {
        bail!("invalid size {s:?}: out of range");
    }
    Ok(bytes as i64)
}

/// Lays runc's flags over the resources read from `--resources`.
pub fn apply_flags(mut r: LinuxResources, a: &UpdateArgs) -> Result<LinuxResources> {
    let size = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
        v.as_deref()
            .map(parse_size)
            .transpose()
            .with_context(|| format!("--{flag}"))
    };
    let mut mem: LinuxMemory = r.memory().unwrap_or_default();
    let mut mem_set = r.memory().is_some();
    type Setter = fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory;
    let memory_flags: [(Option<i64>, Setter); 5] = [
        (size(&a.memory, "memory")?, LinuxMemory::set_limit),
        (
            size(&a.memory_reservation, "memory-reservation")?,
            LinuxMemory::set_reservation,
        ),
        (size(&a.memory_swap, "memory-swap")?, LinuxMemory::set_swap),
        (
            size(&a.kernel_memory, "kernel-memory")?,
            LinuxMemory::set_kernel,
        ),
        (
            size(&a.kernel_memory_tcp, "kernel-memory-tcp")?,
            LinuxMemory::set_kernel_tcp,
        ),
    ];
    for (value, set) in memory_flags {
        if value.is_some() {
            set(&mut mem, value);
            mem_set = true;
        }
    }
    if mem_set {
        r.set_memory(Some(mem));
    }

    let mut cpu: LinuxCpu = r.cpu().clone().unwrap_or_default();
    let mut cpu_set = r.cpu().is_some();
    macro_rules! cpu_flag {
        ($field:expr, $setter:ident) => {
            if let Some(v) = $field.clone() {
                cpu.$setter(Some(v));
                cpu_set = true;
            }
        };
    }
    cpu_flag!(a.cpu_share, set_shares);
    cpu_flag!(a.cpu_quota, set_quota);
    cpu_flag!(a.cpu_period, set_period);
    cpu_flag!(a.cpu_burst, set_burst);
    cpu_flag!(a.cpu_rt_period, set_realtime_period);
    cpu_flag!(a.cpu_rt_runtime, set_realtime_runtime);
    cpu_flag!(a.cpu_idle, set_idle);
    cpu_flag!(a.cpuset_cpus, set_cpus);
    cpu_flag!(a.cpuset_mems, set_mems);
    if cpu_set {
        r.set_cpu(Some(cpu));
    }

    if let Some(l) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(l);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_runc() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        for bad in ["", "m", "12x", "-5", "1e9", "9999999999999999p"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_the_file_and_keep_the_rest() {
        let base: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1000,"swap":2000},"cpu":{"shares":100},"pids":{"limit":5}}"#,
        )
        .unwrap();
        let a = UpdateArgs {
            memory: Some("4k".into()),
            cpu_quota: Some(-1),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(9),
            blkio_weight: Some(300),
            ..Default::default()
        };
        let r = apply_flags(base, &a).unwrap();
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(4096), Some(2000)));
        let c = r.cpu().as_ref().unwrap();
        assert_eq!(
            (c.shares(), c.quota(), c.cpus().as_deref()),
            (Some(100), Some(-1), Some("0"))
        );
        assert_eq!(r.pids().unwrap().limit(), 9);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
    }

    #[test]
    fn no_flags_no_resources() {
        let r = apply_flags(LinuxResources::default(), &UpdateArgs::default()).unwrap();
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
    }
}
