use anyhow::{Context, Result};

use crate::cli::Cli;

pub fn run(cli: &Cli, id: &str) -> Result<i32> {
    let dir = super::existing(cli, id)?;
    crate::container::start(&dir).with_context(|| format!("container {id}"))?;
    Ok(0)
}
