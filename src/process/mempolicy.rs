//! linux.memoryPolicy → set_mempolicy(2) for the container's process (kept across fork and execve), with runc's
//! checks of mode and nodes.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::config::attrs::node_mask;

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
}
