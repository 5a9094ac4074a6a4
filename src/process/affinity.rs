//! process.execCPUAffinity for `exec` (the spec: not for the init), as runc does it: `initial` is the affinity of
//! berth while it clones the process (so the process starts on those CPUs, before it joins the container's
//! cgroup), `final` the one the process sets once in the cgroup, before its execve. A process given neither, and
//! the init, get every CPU back (runc too): they do not inherit an affinity the caller of berth happened to have;
//! the kernel still limits them to the cgroup's cpuset.

use anyhow::{anyhow, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::config::{CpuList, Process};

fn set(what: &str, list: &CpuList) -> Result<()> {
    sched_setaffinity(Pid::from_raw(0), &list.cpus).map_err(|e| {
        anyhow!(
            "process.execCPUAffinity.{what} {:?}: sched_setaffinity: {}",
            list.text,
            e.desc()
        )
    })
}

/// Every CPU the kernel may have (it clamps the mask to the cgroup's cpuset itself).
fn reset() {
    let mut all = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        let _ = all.set(cpu);
    }
    // Best effort, as runc: failing leaves the inherited affinity.
    let _ = sched_setaffinity(Pid::from_raw(0), &all);
}

/// berth's own affinity set to `initial` for as long as the guard lives (around the clone of an exec process).
pub struct Initial {
    saved: Option<CpuSet>,
}

impl Initial {
    pub fn enter(p: &Process) -> Result<Initial> {
        let Some(list) = &p.exec_cpu_affinity.initial else {
            return Ok(Initial { saved: None });
        };
        let saved = sched_getaffinity(Pid::from_raw(0))
            .map_err(|e| anyhow!("sched_getaffinity: {}", e.desc()))?;
        set("initial", list)?;
        Ok(Initial { saved: Some(saved) })
    }
}

impl Drop for Initial {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = sched_setaffinity(Pid::from_raw(0), saved);
        }
    }
}

/// In the exec'd process, once in the container's cgroup: `final`, else keep `initial`, else every CPU.
pub fn apply_exec(p: &Process) -> Result<()> {
    let a = &p.exec_cpu_affinity;
    match (&a.initial, &a.final_) {
        (_, Some(list)) => set("final", list),
        (Some(_), None) => Ok(()),
        (None, None) => {
            reset();
            Ok(())
        }
    }
}

/// With --debug, the exec process logs the CPUs it starts on, before it joins the cgroup (which, for a cpuset,
/// resets the affinity): the one place `initial` shows, as runc's nsexec logs it.
pub fn log_start() {
    if !crate::logging::debug_enabled() {
        return;
    }
    if let Ok(set) = sched_getaffinity(Pid::from_raw(0)) {
        let cpus: Vec<String> = (0..CpuSet::count())
            .filter(|c| set.is_set(*c).unwrap_or(false))
            .map(|c| c.to_string())
            .collect();
        crate::logging::debug(&format!(
            "exec: CPU affinity before joining the cgroup: {}",
            cpus.join(",")
        ));
    }
}

/// The init: every CPU (execCPUAffinity is not for the init).
pub fn apply_init() {
    reset();
}
