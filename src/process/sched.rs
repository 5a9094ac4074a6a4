//! process.scheduler → sched_setattr(2), with runc's checks of the combination before anything is made.

use oci_spec::runtime::{LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler};

use crate::config::attrs::policy_name;
use crate::sys::SchedAttr;

/// The kernel's number for a policy (linux/sched.h).
fn policy_number(p: LinuxSchedulerPolicy) -> u32 {
    use LinuxSchedulerPolicy::*;
    match p {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    }
}

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    use LinuxSchedulerFlag::*;
    match f {
        SchedResetOnFork => 0x01,
        SchedFlagReclaim => 0x02,
        SchedFlagDLOverrun => 0x04,
        SchedFlagKeepPolicy => 0x08,
        SchedFlagKeepParams => 0x10,
        SchedFlagUtilClampMin => 0x20,
        SchedFlagUtilClampMax => 0x40,
    }
}

pub fn attr(s: &Scheduler) -> SchedAttr {
    SchedAttr {
        policy: policy_number(*s.policy()),
        flags: s
            .flags()
            .iter()
            .flatten()
            .fold(0, |acc, f| acc | flag_bit(*f)),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    }
}

/// Applies the scheduler to the calling process (its children and the program inherit it). `cpus_limited`: the
/// container's cgroup limits its CPUs (linux.resources.cpu.cpus), which the kernel's EPERM then means, in runc's
/// words.
pub fn apply(s: &Scheduler, cpus_limited: bool) -> anyhow::Result<()> {
    crate::sys::sched_setattr_self(&attr(s)).map_err(|e| {
        if e == nix::errno::Errno::EPERM && cpus_limited {
            return anyhow::anyhow!(
                "process scheduler can't be used together with AllowedCPUs (process.scheduler {} with \
                 linux.resources.cpu.cpus: sched_setattr: {})",
                policy_name(*s.policy()),
                e.desc()
            );
        }
        let hint = if e == nix::errno::Errno::EPERM && *s.policy() == LinuxSchedulerPolicy::SchedDeadline {
            " (SCHED_DEADLINE needs the process's CPU affinity to span its whole root domain: no cpuset limit)"
        } else if e == nix::errno::Errno::EPERM {
            " (real-time policies need CAP_SYS_NICE and, on cgroup v1 with RT group scheduling, a \
             linux.resources.cpu.realtimeRuntime for the container's cgroup)"
        } else {
            ""
        };
        anyhow::anyhow!(
            "process.scheduler: sched_setattr {}: {}{hint}",
            policy_name(*s.policy()),
            e.desc()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::attrs::tests::sched;

    #[test]
    fn spec_flag_names_decode_to_their_bits() {
        let s = sched(
            serde_json::json!({"policy": "SCHED_BATCH", "nice": 3, "flags": [
            "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_KEEP_POLICY",
            "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX"]}),
        );
        let a = attr(&s);
        assert_eq!((a.policy, a.flags, a.nice), (3, 0x7f, 3));
    }
}
