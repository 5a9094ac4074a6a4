//! The commands that work on a live container's cgroup: pause, resume, update, the pids for `ps`, and stats and
//! OOM events for `events`.

use crate::config::Resources;
use anyhow::{bail, Context, Result};
use nix::unistd::Pid;

use super::lifecycle::status_of;
use super::state::{self, StateDir, Status};
use crate::cgroups::{self, Freezer};

fn manager(st: &state::State) -> Result<Box<dyn cgroups::Manager>> {
    if st.cgroup_paths.is_empty() {
        bail!("container {} has no cgroup", st.id);
    }
    Ok(st.cgroup_manager())
}

/// Freezes every process of a running container.
pub fn pause(dir: &StateDir) -> Result<()> {
    let _lock = dir.lock()?;
    let st = dir.load()?;
    match status_of(dir, &st) {
        Status::Running => {}
        other => bail!("cannot pause a container that is {other}"),
    }
    manager(&st)?
        .freeze(Freezer::Frozen)
        .context("freeze the cgroup")
}

/// Thaws a paused container.
pub fn resume(dir: &StateDir) -> Result<()> {
    let _lock = dir.lock()?;
    let st = dir.load()?;
    match status_of(dir, &st) {
        Status::Paused => {}
        other => bail!("cannot resume a container that is {other}, not paused"),
    }
    manager(&st)?
        .freeze(Freezer::Thawed)
        .context("thaw the cgroup")
}

/// Host pids of every process in the container.
pub fn pids(dir: &StateDir) -> Result<Vec<Pid>> {
    let st = dir.load()?;
    Ok(manager(&st)?.pids()?)
}

/// Applies new limits to a created, running or paused container (device rules stay as created, as in runc).
pub fn update(dir: &StateDir, resources: &Resources) -> Result<()> {
    let _lock = dir.lock()?;
    let st = dir.load()?;
    match status_of(dir, &st) {
        Status::Stopped => bail!("cannot update a stopped container"),
        Status::Creating => bail!("cannot update a container that is still being created"),
        _ => {}
    }
    manager(&st)?.apply(resources)?;
    Ok(())
}

/// The container's cgroup manager, for a container that is not stopped (`events`).
pub fn live_manager(dir: &StateDir) -> Result<Box<dyn cgroups::Manager>> {
    let st = dir.load()?;
    if status_of(dir, &st) == Status::Stopped {
        bail!("container {} is not running", st.id);
    }
    manager(&st)
}

/// Is the container stopped (or gone)?
pub fn stopped(dir: &StateDir) -> bool {
    match dir.load() {
        Ok(st) => status_of(dir, &st) == Status::Stopped,
        Err(_) => true,
    }
}
