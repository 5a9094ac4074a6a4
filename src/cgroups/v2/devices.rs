//! v2 device control: berth compiles the rules into a BPF_PROG_TYPE_CGROUP_DEVICE program, loads it and attaches it
//! to the container's cgroup. Programs attached before (by an earlier create of the same cgroup path) are
//! detached once the new one is in place, so exactly berth's current rules apply.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::cgroups::devices::{bpf_program, Rule};
use crate::cgroups::{Error, Result};
use crate::sys::bpf;

pub fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let insns: Vec<[u8; 8]> = bpf_program(rules)
        .into_iter()
        .map(|i| i.to_bytes())
        .collect();
    let prog = bpf::load_cgroup_device_prog(&insns).map_err(|(source, log)| Error::Sys {
        what: format!(
            "bpf(BPF_PROG_LOAD) of the device program for {}{log}",
            dir.display()
        ),
        source,
    })?;
    let cg = open_dir(dir)?;
    let old = bpf::query_cgroup_device_progs(cg.as_fd()).unwrap_or_default();
    bpf::attach_cgroup_device_prog(cg.as_fd(), prog.as_fd()).map_err(|source| Error::Sys {
        what: format!("bpf(BPF_PROG_ATTACH) to {}", dir.display()),
        source,
    })?;
    for id in old {
        if let Ok(p) = bpf::prog_fd_by_id(id) {
            let _ = bpf::detach_cgroup_device_prog(cg.as_fd(), p.as_fd());
        }
    }
    Ok(())
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map(OwnedFd::from)
        .map_err(|source| Error::Io {
            op: "open",
            path: dir.to_path_buf(),
            source,
        })
}
