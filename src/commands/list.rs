use anyhow::{bail, Result};

use crate::cli::{Cli, ListArgs};
use crate::container::state::{list_ids, OciState, StateDir};
use crate::container::status_of;

pub fn run(cli: &Cli, a: &ListArgs) -> Result<i32> {
    // No containers yet is an empty default root; a root the caller named must exist (runc too).
    if cli.root_given {
        if let Err(e) = std::fs::metadata(&cli.root) {
            let reason = e.raw_os_error().map_or_else(
                || e.to_string(),
                |n| nix::errno::Errno::from_raw(n).desc().to_lowercase(),
            );
            bail!("open {}: {reason}", cli.root.display());
        }
    }
    let mut rows: Vec<OciState> = Vec::new();
    for id in list_ids(&cli.root)? {
        let dir = StateDir::new(&cli.root, &id);
        // A container being created or deleted right now may have no state file: skip it.
        if let Ok(st) = dir.load() {
            rows.push(st.oci(status_of(&dir, &st)));
        }
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r.id);
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&rows)?),
        "table" => print!("{}", table(&rows)),
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(0)
}

/// runc's columns, padded like its tabwriter output.
fn table(rows: &[OciState]) -> String {
    let mut cells = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for r in rows {
        cells.push([
            r.id.clone(),
            r.pid.to_string(),
            r.status.to_string(),
            r.bundle.display().to_string(),
            r.created.clone(),
            r.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| cells.iter().map(|c| c[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::state::Status;

    #[test]
    fn table_has_runc_header_and_aligned_columns() {
        let r = OciState {
            oci_version: "1.3.0".into(),
            id: "abc".into(),
            pid: 42,
            status: Status::Running,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: String::new(),
            annotations: Default::default(),
        };
        let t = table(&[r]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("ID    PID   STATUS    BUNDLE   CREATED"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("abc   42    running   /b       2026"),
            "{t}"
        );
    }
}
