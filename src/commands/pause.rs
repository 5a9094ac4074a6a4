//! `pause` and `resume`: freeze and thaw the container's cgroup.

use anyhow::{Context, Result};

use crate::cli::Cli;

pub fn pause(cli: &Cli, id: &str) -> Result<i32> {
    let dir = super::existing(cli, id)?;
    crate::container::control::pause(&dir).with_context(|| format!("container {id}"))?;
    Ok(0)
}

pub fn resume(cli: &Cli, id: &str) -> Result<i32> {
    let dir = super::existing(cli, id)?;
    crate::container::control::resume(&dir).with_context(|| format!("container {id}"))?;
    Ok(0)
}
