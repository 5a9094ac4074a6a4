use anyhow::{Context, Result};

use crate::cli::{Cli, DeleteArgs};

pub fn run(cli: &Cli, a: &DeleteArgs) -> Result<i32> {
    let dir = super::existing(cli, &a.id)?;
    crate::container::delete(&dir, a.force).with_context(|| format!("container {}", a.id))?;
    Ok(0)
}
