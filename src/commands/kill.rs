use anyhow::{anyhow, Context, Result};

use crate::cli::{Cli, KillArgs};
use crate::container::signal;

pub fn run(cli: &Cli, a: &KillArgs) -> Result<i32> {
    let dir = super::existing(cli, &a.id)?;
    let sig = signal::parse(a.signal.as_deref().unwrap_or("SIGTERM")).map_err(|e| anyhow!(e))?;
    crate::container::kill(&dir, sig, a.all).with_context(|| format!("container {}", a.id))?;
    Ok(0)
}
