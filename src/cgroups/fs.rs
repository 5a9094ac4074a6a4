//! Small file helpers for cgroupfs: every error names the file.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::{Error, Result};

/// Writes `value` to `dir/file` in one write(2), as cgroupfs expects.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| Error::Io {
            op: "open",
            path: path.clone(),
            source,
        })?;
    f.write_all(value.as_bytes())
        .map_err(|source| Error::Write {
            path,
            value: value.to_string(),
            source,
        })
}

/// Writes `value` to `dir/file` when the file exists; says whether it did.
pub fn write_if_exists(dir: &Path, file: &str, value: &str) -> Result<bool> {
    if !dir.join(file).exists() {
        return Ok(false);
    }
    write(dir, file, value).map(|()| true)
}

/// Whether the kernel refused a write with EOPNOTSUPP: e.g. a per-device weight for a device that the file's I/O
/// scheduler (or iocost) does not control.
pub fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::Write { source, .. } if source.raw_os_error() == Some(libc::EOPNOTSUPP))
}

/// Reads a file holding one number ("max" reads as u64::MAX); missing or unparsable files read as 0.
pub fn read_u64(dir: &Path, file: &str) -> u64 {
    match read(dir, file) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events ...) into a map.
pub fn parse_flat_keyed(text: &str) -> std::collections::BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Reads a flat-keyed file; a missing file is an empty map.
pub fn read_flat_keyed(dir: &Path, file: &str) -> std::collections::BTreeMap<String, u64> {
    read(dir, file)
        .map(|s| parse_flat_keyed(&s))
        .unwrap_or_default()
}

pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| Error::Io {
        op: "read",
        path,
        source,
    })
}

/// mkdir -p with mode 0755; returns the directories it made, outermost first. A parent that vanishes meanwhile (a
/// `delete` removing the shared default parent, see [`remove_default_parent`]) is made again.
pub fn mkdir_all(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    for _ in 0..3 {
        match mkdir_all_once(dir) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
    }
    mkdir_all_once(dir)
}

fn mkdir_all_once(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    missing.reverse();
    for d in &missing {
        match std::fs::DirBuilder::new().mode(0o755).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "mkdir",
                    path: d.clone(),
                    source,
                })
            }
        }
    }
    Ok(missing)
}

/// The parent berth puts containers under when linux.cgroupsPath is empty (`berth/<id>`).
pub const DEFAULT_PARENT: &str = "berth";

/// After a container's cgroup `dir` is gone: removes its parent too when that is berth's default parent and now
/// empty (best effort: another container may be in it, or being created in it).
pub fn remove_default_parent(dir: &Path) {
    if let Some(parent) = dir.parent() {
        if parent.file_name() == Some(std::ffi::OsStr::new(DEFAULT_PARENT)) {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Reads a cgroup.procs-style file into pids.
pub fn read_pids(dir: &Path, file: &str) -> Result<Vec<nix::unistd::Pid>> {
    Ok(read(dir, file)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .map(nix::unistd::Pid::from_raw)
        .collect())
}

/// Every pid in the cgroup `dir` and the cgroups below it (runc's GetAllPids): a process the container, or
/// `exec --cgroup`, put in a sub-cgroup is still the container's. A sub-cgroup removed meanwhile is skipped.
pub fn read_pids_tree(dir: &Path) -> Result<Vec<nix::unistd::Pid>> {
    let mut pids = read_pids(dir, "cgroup.procs")?;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for sub in entries.flatten() {
            // cgroupfs has no symlinks: a directory here is a sub-cgroup.
            if sub.file_type().is_ok_and(|t| t.is_dir()) {
                let path = sub.path();
                match read_pids(&path, "cgroup.procs") {
                    Ok(more) => pids.extend(more),
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        continue
                    }
                    Err(e) => return Err(e),
                }
                pending.push(path);
            }
        }
    }
    Ok(pids)
}

/// rmdir with a bounded wait for exiting processes to leave (EBUSY).
pub fn rmdir_patiently(dir: &Path) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(1);
    for _ in 0..14 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
            Err(source) => {
                return Err(Error::Io {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(Error::Io {
        op: "rmdir",
        path: dir.to_path_buf(),
        source: std::io::Error::from_raw_os_error(libc::EBUSY),
    })
}

/// Removes a cgroup directory and every cgroup below it, deepest first (each with [`rmdir_patiently`]). Only
/// directories are visited: a cgroupfs holds nothing else that rmdir could take, and no symlinks.
pub fn rmdir_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                op: "read directory",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&entry.path())?;
        }
    }
    rmdir_patiently(dir)
}
