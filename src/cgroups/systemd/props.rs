//! The spec's resources as systemd unit properties, so that systemd knows (and keeps, on a daemon-reload) the
//! limits it has names for. Everything is written to the cgroup files afterwards as well, as runc does.

use crate::config::Resources;

use super::dbus::Value;
use crate::cgroups::convert::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
use crate::cgroups::devices::{Rule, ACC_MKNOD, ACC_READ, ACC_WRITE};
use crate::cgroups::stats::parse_cpu_list;
use crate::cgroups::Result;

pub type Property = (String, Value);

/// systemd's "infinity" for the u64 properties.
pub const INFINITY: u64 = u64::MAX;

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

fn limit(v: i64) -> u64 {
    if v < 0 {
        INFINITY
    } else {
        v as u64
    }
}

/// A CPU or NUMA node list ("0-2,5") as systemd's bitmask: bit i%8 of byte i/8 is CPU i.
pub fn bitmask(list: &str) -> Option<Vec<u8>> {
    let ids = parse_cpu_list(list);
    if ids.is_empty() {
        return None;
    }
    let max = *ids.iter().max().expect("not empty") as usize;
    let mut bytes = vec![0u8; max / 8 + 1];
    for i in ids {
        bytes[i as usize / 8] |= 1 << (i % 8);
    }
    Some(bytes)
}

fn bytes(v: Vec<u8>) -> Value {
    Value::Array("y".into(), v.into_iter().map(Value::Byte).collect())
}

/// CPUQuotaPerSecUSec from quota/period as runc computes it: per-second time, rounded up to whole 10 ms
/// (systemd's granularity).
pub fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// The properties for `r` on a cgroup v2 host (`unified`) or a v1/hybrid one. `proc_devices` is the text of
/// /proc/devices, to name device groups for rules with a wildcard minor.
pub fn resources(r: &Resources, unified: bool, proc_devices: &str) -> Result<Vec<Property>> {
    let mut p = Vec::new();
    if let Some(m) = r.memory() {
        let mem_limit = m.limit().filter(|l| *l != 0);
        if let Some(l) = mem_limit {
            p.push(prop(
                if unified { "MemoryMax" } else { "MemoryLimit" },
                Value::U64(limit(l)),
            ));
        }
        if unified {
            if let Some(low) = m.reservation().filter(|v| *v != 0) {
                p.push(prop("MemoryLow", Value::U64(limit(low))));
            }
            if let Some(swap) = m.swap() {
                match swap_to_v2(swap, mem_limit)? {
                    Some(s) if s == "max" => p.push(prop("MemorySwapMax", Value::U64(INFINITY))),
                    Some(s) => p.push(prop(
                        "MemorySwapMax",
                        Value::U64(s.parse().unwrap_or(INFINITY)),
                    )),
                    None => {}
                }
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            if unified {
                p.push(prop("CPUWeight", Value::U64(shares_to_weight(s))));
            } else {
                p.push(prop("CPUShares", Value::U64(s)));
            }
        }
        let quota = c.quota().filter(|q| *q != 0);
        let period = c.period().filter(|p| *p != 0);
        if let Some(per) = period {
            p.push(prop("CPUQuotaPeriodUSec", Value::U64(per)));
        }
        if quota.is_some() || period.is_some() {
            p.push(prop(
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota.unwrap_or(-1), period.unwrap_or(0))),
            ));
        }
        // systemd has cpuset only on v2
        if unified {
            if let Some(b) = c.cpus().as_deref().and_then(bitmask) {
                p.push(prop("AllowedCPUs", bytes(b)));
            }
            if let Some(b) = c.mems().as_deref().and_then(bitmask) {
                p.push(prop("AllowedMemoryNodes", bytes(b)));
            }
        }
    }
    if let Some(pids) = r.pids() {
        match pids.limit() {
            0 => {}
            l => p.push(prop("TasksMax", Value::U64(limit(l)))),
        }
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        if unified {
            p.push(prop(
                "IOWeight",
                Value::U64(blkio_weight_to_io_weight(u64::from(w))),
            ));
        } else {
            p.push(prop("BlockIOWeight", Value::U64(u64::from(w))));
        }
    }
    if let Some(u) = r.unified() {
        for (key, name) in [
            ("memory.high", "MemoryHigh"),
            ("memory.low", "MemoryLow"),
            ("memory.max", "MemoryMax"),
        ] {
            if let Some(v) = u.get(key).filter(|_| unified) {
                let v = if v.trim() == "max" {
                    Some(INFINITY)
                } else {
                    v.trim().parse().ok()
                };
                if let Some(v) = v {
                    p.retain(|(n, _)| n != name);
                    p.push(prop(name, Value::U64(v)));
                }
            }
        }
    }
    if let Some(rules) = r.devices() {
        p.extend(device_properties(rules, proc_devices));
    }
    Ok(p)
}

/// DevicePolicy/DeviceAllow for rules systemd can express: deny-all rules first, then only allows. Anything else
/// (a deny after an allow, a major that /proc/devices does not name) gives no device properties at all: systemd
/// then installs no device filter of its own, and berth's (the cgroupfs one, written afterwards) decides alone.
pub fn device_properties(rules: &[Rule], proc_devices: &str) -> Vec<Property> {
    let mut allows = Vec::new();
    let mut seen_allow = false;
    for r in rules {
        if !r.allow {
            if seen_allow || r.kind != 'a' {
                return Vec::new();
            }
            allows.clear();
            continue;
        }
        seen_allow = true;
        if r.kind == 'a' {
            return Vec::new(); // everything allowed: no filter
        }
        let class = if r.kind == 'b' { "block" } else { "char" };
        let node = match (r.major, r.minor) {
            (Some(ma), Some(mi)) => format!("/dev/{class}/{ma}:{mi}"),
            (None, _) => format!("{class}-*"),
            (Some(ma), None) => match group_name(proc_devices, class, ma) {
                Some(name) => format!("{class}-{name}"),
                None => return Vec::new(),
            },
        };
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if r.access & bit != 0 {
                acc.push(c);
            }
        }
        allows.push(Value::Struct(vec![Value::Str(node), Value::Str(acc)]));
    }
    vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        prop("DeviceAllow", Value::Array("(ss)".into(), allows)),
    ]
}

/// The name /proc/devices gives `major` in its "Character devices:" or "Block devices:" section.
fn group_name(proc_devices: &str, class: &str, major: u32) -> Option<String> {
    let header = if class == "block" {
        "Block devices:"
    } else {
        "Character devices:"
    };
    let mut in_section = false;
    for line in proc_devices.lines() {
        if line.ends_with("devices:") {
            in_section = line == header;
            continue;
        }
        let mut f = line.split_whitespace();
        if in_section && f.next().and_then(|n| n.parse::<u32>().ok()) == Some(major) {
            return f.next().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

    fn get<'a>(p: &'a [Property], name: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn res(
        limit: i64,
        swap: Option<i64>,
        shares: u64,
        quota: i64,
        period: u64,
        pids: i64,
    ) -> Resources {
        let mut r = LinuxResources::default();
        let mut m = LinuxMemory::default();
        m.set_limit(Some(limit));
        m.set_swap(swap);
        r.set_memory(Some(m));
        let mut c = LinuxCpu::default();
        c.set_shares(Some(shares));
        c.set_quota(Some(quota));
        c.set_period(Some(period));
        c.set_cpus(Some("0-1,9".into()));
        r.set_cpu(Some(c));
        let mut p = LinuxPids::default();
        p.set_limit(pids);
        r.set_pids(Some(p));
        Resources::for_update(r).unwrap()
    }

    #[test]
    fn v2_properties() {
        let p = resources(
            &res(64 << 20, Some(96 << 20), 1024, 50_000, 100_000, 20),
            true,
            "",
        )
        .unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(32 << 20)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(100)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(20)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&bytes(vec![0b11, 0b10])));
        assert!(get(&p, "MemoryLimit").is_none() && get(&p, "CPUShares").is_none());
    }

    #[test]
    fn v1_properties() {
        let p = resources(&res(-1, None, 512, -1, 0, -1), false, "").unwrap();
        assert_eq!(get(&p, "MemoryLimit"), Some(&Value::U64(INFINITY)));
        assert_eq!(get(&p, "CPUShares"), Some(&Value::U64(512)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(INFINITY)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
        assert!(get(&p, "AllowedCPUs").is_none() && get(&p, "MemoryMax").is_none());
    }

    #[test]
    fn quota_rounds_up_to_10ms() {
        assert_eq!(quota_per_sec(1, 100_000), 10_000);
        assert_eq!(quota_per_sec(123_456, 1_000_000), 130_000);
        assert_eq!(quota_per_sec(20_000, 0), 200_000);
        assert_eq!(quota_per_sec(-1, 100_000), INFINITY);
    }

    #[test]
    fn swap_without_a_memory_limit_is_an_error_on_v2() {
        assert!(resources(&res(0, Some(1 << 20), 0, 0, 0, 0), true, "").is_err());
    }

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  7 loop\n";

    fn rule(allow: bool, kind: char, major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn device_rules_become_strict_allow_list() {
        let rules = [
            rule(false, 'a', None, None, 7),
            rule(true, 'c', None, None, ACC_MKNOD),
            rule(true, 'c', Some(1), Some(3), 7),
            rule(true, 'c', Some(136), None, ACC_READ | ACC_WRITE),
            rule(true, 'b', Some(7), None, ACC_READ),
        ];
        let p = device_properties(&rules, PROC_DEVICES);
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("strict".into())));
        let pair =
            |a: &str, b: &str| Value::Struct(vec![Value::Str(a.into()), Value::Str(b.into())]);
        assert_eq!(
            get(&p, "DeviceAllow"),
            Some(&Value::Array(
                "(ss)".into(),
                vec![
                    pair("char-*", "m"),
                    pair("/dev/char/1:3", "rwm"),
                    pair("char-pts", "rw"),
                    pair("block-loop", "r")
                ]
            ))
        );
    }

    #[test]
    fn inexpressible_device_rules_give_no_properties() {
        // a deny after an allow
        let rules = [
            rule(true, 'c', Some(1), Some(3), 7),
            rule(false, 'c', Some(1), Some(3), ACC_WRITE),
        ];
        assert!(device_properties(&rules, PROC_DEVICES).is_empty());
        // a major /proc/devices does not name
        assert!(device_properties(&[rule(true, 'c', Some(250), None, 7)], PROC_DEVICES).is_empty());
        // allow everything
        assert!(device_properties(&[rule(true, 'a', None, None, 7)], PROC_DEVICES).is_empty());
    }
}
