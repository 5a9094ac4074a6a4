use anyhow::Result;

use crate::cli::Cli;
use crate::container::status_of;

pub fn run(cli: &Cli, id: &str) -> Result<i32> {
    let dir = super::existing(cli, id)?;
    let st = dir.load()?;
    let oci = st.oci(status_of(&dir, &st));
    println!("{}", serde_json::to_string_pretty(&oci)?);
    Ok(0)
}
