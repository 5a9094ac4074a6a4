//! `ps`: as runc, the host's `ps` (default `-ef`) filtered to the container's processes, or `--format json`: a
//! JSON array of their host pids.

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, PsArgs};

pub fn run(cli: &Cli, a: &PsArgs) -> Result<i32> {
    let dir = super::existing(cli, &a.id)?;
    let pids: Vec<i32> = crate::container::control::pids(&dir)
        .with_context(|| format!("container {}", a.id))?
        .into_iter()
        .map(|p| p.as_raw())
        .collect();
    match a.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            return Ok(0);
        }
        "table" => {}
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!("{}", filter(&String::from_utf8_lossy(&out.stdout), &pids)?);
    Ok(0)
}

/// Keeps ps's header and the lines whose PID column is one of `pids`.
pub fn filter(ps_output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = ps_output.lines();
    let Some(header) = lines.next() else {
        return Ok(String::new());
    };
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps output has no PID column (header: {header:?})");
    };
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_lines() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                  root           1       0  0 08:00 ?        00:00:01 /sbin/init\n\
                  root         420       1  0 08:00 ?        00:00:00 sleep 1000\n";
        let out = filter(ps, &[420]).unwrap();
        assert_eq!(out.lines().count(), 2);
        assert!(out.lines().nth(1).unwrap().ends_with("sleep 1000"));
        assert!(filter("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
