//! The value conversions between the spec's (cgroup v1 shaped) resources and the cgroup v2 interface files, as runc
//! does them, so that one config means the same on both.

use super::{Error, Result};

/// cpu.shares (2..262144) → cpu.weight (1..10000), with the log-quadratic map runc (1.3.2 and later) and crun use:
/// with l = log2(shares), weight = ceil(10^((l² + 125·l) / 612 − 7/34)). It keeps the ends (2 → 1,
/// 262144 → 10000) and, unlike the older linear map (1024 → 39), the defaults: 1024 → 100. 0 means "not set";
/// out-of-range shares are clamped, as the kernel clamps cpu.shares.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
        }
    }
}

/// blkio.weight (10..1000) → io.weight (1..10000), runc's linear map. 0 means "not set".
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = weight.clamp(10, 1000);
    1 + ((weight - 10) * 9999) / 990
}

/// The spec's memory.swap is memory+swap (v1's memsw); v2's memory.swap.max is swap alone. `None` leaves the file
/// alone. `limit` is the memory limit in effect (-1 or None: unlimited).
pub fn swap_to_v2(swap: i64, limit: Option<i64>) -> Result<Option<String>> {
    let bad = |reason: String| Error::BadValue {
        resource: "memory.swap",
        reason,
    };
    match (swap, limit) {
        (-1, _) => Ok(Some("max".into())),
        (0, _) => Ok(None),
        (s, _) if s < -1 => Err(bad(format!("{s} is not a size"))),
        (_, None) | (_, Some(-1)) => Err(bad(
            "a memory+swap limit needs a memory limit on cgroup v2".into(),
        )),
        (s, Some(l)) if s < l => Err(bad(format!(
            "memory+swap ({s}) must not be below the memory limit ({l})"
        ))),
        (s, Some(l)) => Ok(Some((s - l).to_string())),
    }
}

/// A memory limit for a v2 file: negative is "max".
pub fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".into()
    } else {
        value.to_string()
    }
}

/// A memory limit for a v1 file: every negative value means "unlimited", which v1 spells -1.
pub fn v1_limit(value: i64) -> String {
    if value < 0 {
        "-1".into()
    } else {
        value.to_string()
    }
}

/// cpu.max "QUOTA PERIOD": a quota of 0 or below is "max"; a missing period keeps the kernel's default (100ms).
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    if quota.is_none() && period.is_none() {
        return None;
    }
    let quota = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".into(),
    };
    Some(format!(
        "{quota} {}",
        period.filter(|p| *p > 0).unwrap_or(100_000)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_weight_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(3), 2);
        assert_eq!(shares_to_weight(256), 35);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(
            shares_to_weight(1024),
            100,
            "the v1 default maps to the v2 default"
        );
        assert_eq!(shares_to_weight(2048), 174);
        assert_eq!(shares_to_weight(100_000), 4340);
        assert_eq!(shares_to_weight(262_143), 10_000);
        assert_eq!(shares_to_weight(262_144), 10_000);
        // Out-of-range shares are clamped, as the kernel clamps cpu.shares.
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1 << 40), 10_000);
    }

    #[test]
    fn blkio_weight_maps_onto_io_weight() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(100), 910);
        assert_eq!(blkio_weight_to_io_weight(300), 2930);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_converted_to_swap_alone() {
        assert_eq!(swap_to_v2(-1, None).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_to_v2(0, Some(100)).unwrap(), None);
        assert_eq!(swap_to_v2(300, Some(100)).unwrap().as_deref(), Some("200"));
        assert_eq!(swap_to_v2(100, Some(100)).unwrap().as_deref(), Some("0"));
        assert!(swap_to_v2(50, Some(100)).is_err());
        assert!(swap_to_v2(50, None).is_err());
        assert!(swap_to_v2(50, Some(-1)).is_err());
        assert!(swap_to_v2(-5, Some(100)).is_err());
    }

    #[test]
    fn limits_spell_unlimited_per_version() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        assert_eq!(v1_limit(-7), "-1");
        assert_eq!(v1_limit(4096), "4096");
    }

    #[test]
    fn cpu_max_strings() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(
            cpu_max(Some(50_000), Some(200_000)).unwrap(),
            "50000 200000"
        );
        assert_eq!(cpu_max(Some(-1), None).unwrap(), "max 100000");
        assert_eq!(cpu_max(None, Some(10_000)).unwrap(), "max 10000");
        assert_eq!(cpu_max(Some(0), Some(0)).unwrap(), "max 100000");
    }
}
