//! What the host sees of a container that CRI made: berth's own state, its cgroup files, namespaces, mounts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

/// The runtime as the shim runs it: the same binary and `--root` (the handler's Root plus containerd's namespace).
pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
}

impl Runtime {
    /// `RUNTIME state ID`, parsed (berth's and runc's share the schema).
    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        let out = Command::new(&self.bin)
            .arg("--root")
            .arg(&self.root)
            .args(["state", id])
            .output()
            .with_context(|| format!("run {} state", self.bin.display()))?;
        ensure!(
            out.status.success(),
            "{} state {id}: {}",
            self.bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    pub fn knows(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// The cgroup directories the runtime recorded for the container (berth's state file's cgroupPaths, runc's
    /// cgroup_paths).
    pub fn cgroup_dirs(&self, id: &str) -> Result<Vec<PathBuf>> {
        let path = self.root.join(id).join("state.json");
        let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&raw)?;
        let paths = if v["cgroupPaths"].is_object() {
            &v["cgroupPaths"]
        } else {
            &v["cgroup_paths"]
        };
        Ok(paths
            .as_object()
            .with_context(|| format!("no cgroup paths in {}", path.display()))?
            .values()
            .filter_map(|p| p.as_str().map(PathBuf::from))
            .collect())
    }
}

/// The value of a cgroup interface file in whichever of `dirs` has it.
pub fn cgroup_value(dirs: &[PathBuf], file: &str) -> Result<String> {
    for d in dirs {
        if let Ok(s) = std::fs::read_to_string(d.join(file)) {
            return Ok(s.trim().to_string());
        }
    }
    bail!("no {file} in any of {dirs:?}")
}

/// The namespace inode a process is in (`/proc/PID/ns/KIND`).
pub fn ns_of(pid: i64, kind: &str) -> Result<u64> {
    let p = format!("/proc/{pid}/ns/{kind}");
    Ok(std::fs::metadata(&p)
        .with_context(|| format!("stat {p}"))?
        .ino())
}

/// The inode of a namespace file (a bind mount of nsfs, as CRI keeps the pod's network namespace).
pub fn ns_file(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .ino())
}

/// Mount points that mention `needle` (an id), from our mount table.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
        .collect()
}

/// Polls `f` until it is true or `secs` pass.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The CPU quota in µs per period, from cgroup v1's cpu.cfs_quota_us or v2's cpu.max.
pub fn cpu_quota(dirs: &[PathBuf]) -> Result<String> {
    cgroup_value(dirs, "cpu.cfs_quota_us").or_else(|_| {
        let max = cgroup_value(dirs, "cpu.max")?;
        Ok(max.split(' ').next().unwrap_or("").to_string())
    })
}

/// The memory limit, from cgroup v1's memory.limit_in_bytes or v2's memory.max.
pub fn memory_limit(dirs: &[PathBuf]) -> Result<String> {
    cgroup_value(dirs, "memory.limit_in_bytes").or_else(|_| cgroup_value(dirs, "memory.max"))
}

/// CPU shares as cgroup v1's cpu.shares, or v2's cpu.weight compared with the weight the shares map to (the
/// log-quadratic map of runc 1.3.2+, crun and berth: 512 → 59, 1024 → 100).
pub fn cpu_shares(dirs: &[PathBuf], want: u64) -> Result<bool> {
    if let Ok(s) = cgroup_value(dirs, "cpu.shares") {
        return Ok(s == want.to_string());
    }
    let weight = cgroup_value(dirs, "cpu.weight")?;
    let l = (want as f64).log2();
    let mapped = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as u64;
    Ok(weight == mapped.to_string())
}

/// `systemctl show -P PROP UNIT` (systemd as PID 1, the systemd cgroup tests only).
pub fn unit_property(unit: &str, prop: &str) -> Result<String> {
    let out = Command::new("systemctl")
        .args(["show", "-P", prop, unit])
        .output()
        .context("run systemctl")?;
    ensure!(
        out.status.success(),
        "systemctl show {unit}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
