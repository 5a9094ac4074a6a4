//! The process attributes the kernel keeps across execve, set as the last root-privileged step before the
//! capabilities drop (real-time classes need CAP_SYS_NICE/CAP_SYS_ADMIN), for the init and for `exec`:
//! CPU affinity, then the scheduler (SCHED_DEADLINE checks the affinity), the I/O priority, the personality and
//! the memory policy (runc's order).

use anyhow::Result;

use crate::config::{Config, Linux, Process};

/// The init: every CPU (execCPUAffinity is for `exec` only), then the container's process attributes.
pub fn apply_init(config: &Config) -> Result<()> {
    super::affinity::apply_init();
    apply(&config.process, Some(&config.linux))
}

/// An `exec` process, already in the container's cgroup: execCPUAffinity.final, then the attributes.
pub fn apply_exec(p: &Process, linux: Option<&Linux>) -> Result<()> {
    super::affinity::apply_exec(p)?;
    apply(p, linux)
}

/// The container-wide ones (personality, memory policy) come from `linux`.
fn apply(p: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(s) = &p.scheduler {
        let cpus_limited = linux
            .and_then(|l| l.resources.cpu().as_ref())
            .is_some_and(|c| c.cpus().as_deref().is_some_and(|cpus| !cpus.is_empty()));
        super::sched::apply(s, cpus_limited)?;
    }
    if let Some(io) = &p.io_priority {
        super::ioprio::apply(io)?;
    }
    if let Some(per) = linux.and_then(|l| l.personality.as_ref()) {
        super::personality::apply(per)?;
    }
    if let Some(mp) = linux.and_then(|l| l.memory_policy.as_ref()) {
        super::mempolicy::apply(mp)?;
    }
    Ok(())
}
