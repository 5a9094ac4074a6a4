//! The checks of the process attributes (called by the `process` translation, for config.json and for an `exec`
//! process) and of the container-wide ones the process runs under, that need no kernel. The parsers they share
//! with the code that applies the attributes (`process::{sched, mempolicy}`) live here, so that a value is read one
//! way.

use nix::sched::CpuSet;
use oci_spec::runtime::{
    LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxSchedulerPolicy,
    MemoryPolicyModeType, Scheduler,
};

/// The config's policy name, for messages.
pub fn policy_name(p: LinuxSchedulerPolicy) -> String {
    format!(
        "SCHED_{}",
        format!("{p:?}").trim_start_matches("Sched").to_uppercase()
    )
}

/// runc's rules: nice in -20..=19 for SCHED_OTHER/SCHED_BATCH, a priority only for the real-time policies,
/// runtime/deadline/period only for SCHED_DEADLINE.
pub(super) fn scheduler(s: &Scheduler) -> Result<(), String> {
    use LinuxSchedulerPolicy::*;
    let policy = *s.policy();
    let nice = s.nice().unwrap_or(0);
    if matches!(policy, SchedOther | SchedBatch) && !(-20..=19).contains(&nice) {
        return Err(format!(
            "process.scheduler.nice {nice} is out of range -20..19 for {}",
            policy_name(policy)
        ));
    }
    if s.priority().unwrap_or(0) != 0 && !matches!(policy, SchedFifo | SchedRr) {
        return Err(format!(
            "process.scheduler.priority is only for SCHED_FIFO and SCHED_RR, not {}",
            policy_name(policy)
        ));
    }
    let deadline_params = [s.runtime(), s.deadline(), s.period()]
        .iter()
        .any(|v| v.unwrap_or(0) != 0);
    if deadline_params && policy != SchedDeadline {
        return Err(format!(
            "process.scheduler runtime/deadline/period are only for SCHED_DEADLINE, not {}",
            policy_name(policy)
        ));
    }
    Ok(())
}

/// runc's check: a priority level in 0..=7 (the class is checked when config.json is decoded).
pub(super) fn io_priority(p: &LinuxIOPriority) -> Result<(), String> {
    if !(0..=7).contains(&p.priority()) {
        return Err(format!(
            "process.ioPriority.priority {} is out of range 0..7",
            p.priority()
        ));
    }
    Ok(())
}

/// "0-3,7" → a CpuSet (the format is checked when config.json is decoded; the range here).
pub fn cpu_list(list: &str) -> Result<CpuSet, String> {
    let mut set = CpuSet::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let num = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("{list:?}: bad CPU {s:?}"))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("{list:?}: range {part} goes backwards"));
        }
        for cpu in lo..=hi {
            set.set(cpu).map_err(|_| {
                format!(
                    "{list:?}: CPU {cpu} is beyond the {} CPUs berth handles",
                    CpuSet::count()
                )
            })?;
        }
    }
    Ok(set)
}

/// Nodes berth can name: the mask passed to the kernel has this many bits.
pub const MAX_NODES: usize = 1024;

/// "0-1,3" → the node mask, as 64-bit words.
pub fn node_mask(list: &str) -> Result<Vec<u64>, String> {
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

/// runc's checks, in its words (`invalid memory policy nodes ...`, `memory policy mode requires 0 nodes but got
/// 8`), after the field.
pub fn memory_policy(p: &LinuxMemoryPolicy) -> Result<(), String> {
    use MemoryPolicyModeType::*;
    let nodes = p.nodes().as_deref().unwrap_or("");
    let mask = node_mask(nodes).map_err(|e| {
        format!("linux.memoryPolicy.nodes: invalid memory policy nodes {nodes:?}: {e}")
    })?;
    let count: u32 = mask.iter().map(|w| w.count_ones()).sum();
    match p.mode() {
        MpolDefault | MpolLocal if count != 0 => Err(format!(
            "linux.memoryPolicy: memory policy mode requires 0 nodes but got {count} (mode {})",
            p.mode()
        )),
        MpolBind | MpolInterleave | MpolPreferredMany | MpolWeightedInterleave if count == 0 => {
            Err(format!(
                "linux.memoryPolicy: memory policy mode requires at least one node but got 0 (mode {})",
                p.mode()
            ))
        }
        _ => Ok(()),
    }
}

/// The field of a `linux.memoryPolicy` that failed to decode (serde names neither), in runc's words: a missing or
/// unknown mode, an unknown flag. None when the policy is not what failed.
pub fn name_memory_policy_decode_error(policy: &serde_json::Value) -> Option<String> {
    let mode = policy.get("mode");
    if mode.is_none_or(|m| serde_json::from_value::<MemoryPolicyModeType>(m.clone()).is_err()) {
        let shown = mode.map_or_else(|| "\"\"".to_string(), |m| m.to_string());
        return Some(format!(
            "linux.memoryPolicy.mode: invalid memory policy mode {shown}"
        ));
    }
    let flags = policy.get("flags").and_then(serde_json::Value::as_array);
    for (i, f) in flags.into_iter().flatten().enumerate() {
        if serde_json::from_value::<oci_spec::runtime::MemoryPolicyFlagType>(f.clone()).is_err() {
            return Some(format!(
                "linux.memoryPolicy.flags[{i}]: invalid memory policy flag {f}"
            ));
        }
    }
    None
}

/// The spec defines no flag values yet: any flag is refused rather than dropped (runc warns and drops them).
pub fn personality(p: &LinuxPersonality) -> Result<(), String> {
    match p.flags() {
        Some(flags) if !flags.is_empty() => Err(format!(
            "linux.personality.flags {flags:?}: no personality flags are supported (the runtime spec defines none)"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `process.scheduler` from its config.json form (flag names translated), for the tests here and in
    /// `process::sched`.
    pub(crate) fn sched(v: serde_json::Value) -> Scheduler {
        let mut p = serde_json::json!({ "scheduler": v });
        crate::config::translate_scheduler_flags(&mut p);
        serde_json::from_value(p["scheduler"].take()).unwrap()
    }

    #[test]
    fn runc_rules_for_scheduler_combinations() {
        let ok = [
            serde_json::json!({"policy": "SCHED_OTHER", "nice": -20}),
            serde_json::json!({"policy": "SCHED_FIFO", "priority": 10}),
            serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3}),
        ];
        for v in ok {
            scheduler(&sched(v.clone())).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
        let bad = [
            (
                serde_json::json!({"policy": "SCHED_BATCH", "nice": 20}),
                "process.scheduler.nice",
            ),
            (
                serde_json::json!({"policy": "SCHED_OTHER", "priority": 1}),
                "process.scheduler.priority",
            ),
            (
                serde_json::json!({"policy": "SCHED_RR", "period": 5}),
                "SCHED_DEADLINE",
            ),
        ];
        for (v, want) in bad {
            let e = scheduler(&sched(v.clone())).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
        assert_eq!(policy_name(LinuxSchedulerPolicy::SchedRr), "SCHED_RR");
    }

    #[test]
    fn io_priority_levels_are_0_to_7() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":5}"#).unwrap();
        io_priority(&p).unwrap();
        let bad: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_BE","priority":8}"#).unwrap();
        let e = io_priority(&bad).unwrap_err();
        assert!(
            e.contains("process.ioPriority.priority 8") && e.contains("out of range"),
            "{e}"
        );
    }

    #[test]
    fn cpu_lists_parse_as_the_kernel_writes_them() {
        let s = cpu_list("0-2,5").unwrap();
        let on: Vec<usize> = (0..8).filter(|c| s.is_set(*c).unwrap()).collect();
        assert_eq!(on, [0, 1, 2, 5]);
        assert!(cpu_list("3-1").unwrap_err().contains("backwards"));
        assert!(cpu_list("5000").unwrap_err().contains("beyond"));
    }

    fn policy(v: serde_json::Value) -> LinuxMemoryPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn nodes_and_modes_as_runc_checks_them() {
        assert_eq!(node_mask("0-2,65").unwrap()[..2], [0b111, 0b10]);
        assert!(node_mask("3-1").is_err() && node_mask("5000").is_err());
        memory_policy(&policy(
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"}),
        ))
        .unwrap();
        memory_policy(&policy(serde_json::json!({"mode": "MPOL_PREFERRED"}))).unwrap();
        let e = memory_policy(&policy(serde_json::json!({"mode": "MPOL_INTERLEAVE"}))).unwrap_err();
        assert!(
            e.contains("linux.memoryPolicy") && e.contains("at least one node"),
            "{e}"
        );
        let e = memory_policy(&policy(
            serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
        ))
        .unwrap_err();
        assert!(
            e.contains("memory policy mode requires 0 nodes but got 1"),
            "{e}"
        );
        let e = memory_policy(&policy(
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-9876543210"}),
        ))
        .unwrap_err();
        assert!(e.contains("invalid memory policy nodes"), "{e}");
    }

    #[test]
    fn undecodable_policies_are_named_in_runcs_words() {
        let named = |v| name_memory_policy_decode_error(&v).unwrap_or_default();
        assert!(named(serde_json::json!({})).contains("invalid memory policy mode"));
        assert!(named(serde_json::json!({"nodes": "0-7"})).contains("invalid memory policy mode"));
        assert!(named(serde_json::json!({"mode": "INTERLEAVE"}))
            .contains("invalid memory policy mode \"INTERLEAVE\""));
        assert!(named(
            serde_json::json!({"mode": "MPOL_BIND", "flags": ["MPOL_F_STATIC_NODES", "badflag"]})
        )
        .contains("linux.memoryPolicy.flags[1]: invalid memory policy flag \"badflag\""));
        assert_eq!(
            name_memory_policy_decode_error(&serde_json::json!({"mode": "MPOL_BIND"})),
            None
        );
    }

    #[test]
    fn personality_flags_are_refused_by_name() {
        let p: LinuxPersonality =
            serde_json::from_str(r#"{"domain":"LINUX","flags":["X"]}"#).unwrap();
        assert!(personality(&p)
            .unwrap_err()
            .contains("linux.personality.flags"));
        let p: LinuxPersonality = serde_json::from_str(r#"{"domain":"LINUX32"}"#).unwrap();
        personality(&p).unwrap();
    }
}
