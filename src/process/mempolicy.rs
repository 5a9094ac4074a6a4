//! linux.memoryPolicy → set_mempolicy(2) for the container's process (kept across fork and execve), with runc's
//! checks of mode and nodes.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

/// Nodes berth can name: the mask passed to the kernel has this many bits.
const MAX_NODES: usize = 1024;

fn mode_number(m: MemoryPolicyModeType) -> i32 {
    use MemoryPolicyModeType::*;
    match m {
        MpolDefault => 0,
        MpolPreferred => 1,
        MpolBind => 2,
        MpolInterleave => 3,
        MpolLocal => 4,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    }
}

fn flag_bit(f: MemoryPolicyFlagType) -> i32 {
    match f {
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
    }
}

/// "0-1,3" → the node mask, as 64-bit words.
fn node_mask(list: &str) -> Result<Vec<u64>, String> {
    let mut mask = vec![0u64; MAX_NODES / 64];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n < MAX_NODES)
                .ok_or_else(|| format!("bad node {s:?} (0..{MAX_NODES})"))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("range {part} goes backwards"));
        }
        for n in lo..=hi {
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

const MODES: [&str; 7] = [
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
];
const FLAGS: [&str; 3] = [
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// What `berth features` reports under linux.memoryPolicy.
pub fn features() -> serde_json::Value {
    serde_json::json!({ "modes": MODES, "flags": FLAGS })
}

pub fn validate(p: &LinuxMemoryPolicy) -> Result<(), String> {
    use MemoryPolicyModeType::*;
    let mask = node_mask(p.nodes().as_deref().unwrap_or(""))
        .map_err(|e| format!("linux.memoryPolicy.nodes {:?}: {e}", p.nodes()))?;
    let count: u32 = mask.iter().map(|w| w.count_ones()).sum();
    match p.mode() {
        MpolDefault | MpolLocal if count != 0 => Err(format!(
            "linux.memoryPolicy: mode {} takes no nodes, got {count}",
            p.mode()
        )),
        MpolBind | MpolInterleave | MpolPreferredMany | MpolWeightedInterleave if count == 0 => {
            Err(format!(
                "linux.memoryPolicy: mode {} needs at least one node",
                p.mode()
            ))
        }
        _ => Ok(()),
    }
}

pub fn apply(p: &LinuxMemoryPolicy) -> anyhow::Result<()> {
    let mask = node_mask(p.nodes().as_deref().unwrap_or("")).map_err(|e| anyhow::anyhow!(e))?;
    let mode = p
        .flags()
        .iter()
        .flatten()
        .fold(mode_number(p.mode()), |m, f| m | flag_bit(*f));
    crate::sys::set_mempolicy(mode, &mask).map_err(|e| {
        anyhow::anyhow!(
            "linux.memoryPolicy: set_mempolicy {} nodes {:?}: {}",
            p.mode(),
            p.nodes().as_deref().unwrap_or(""),
            e.desc()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> LinuxMemoryPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_mode_and_flag_features_reports_is_decoded() {
        for m in MODES {
            let p = policy(serde_json::json!({"mode": m, "flags": FLAGS}));
            assert_eq!(p.mode().to_string(), m);
            assert_eq!(p.flags().as_ref().map(Vec::len), Some(FLAGS.len()));
        }
    }

    #[test]
    fn nodes_and_modes_as_runc_checks_them() {
        assert_eq!(node_mask("0-2,65").unwrap()[..2], [0b111, 0b10]);
        assert!(node_mask("3-1").is_err() && node_mask("5000").is_err());
        validate(&policy(
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"}),
        ))
        .unwrap();
        validate(&policy(serde_json::json!({"mode": "MPOL_PREFERRED"}))).unwrap();
        let e = validate(&policy(serde_json::json!({"mode": "MPOL_INTERLEAVE"}))).unwrap_err();
        assert!(e.contains("at least one node"), "{e}");
        let e = validate(&policy(
            serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
        ))
        .unwrap_err();
        assert!(e.contains("no nodes"), "{e}");
    }
}
