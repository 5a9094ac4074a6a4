//! User-namespace id maps, written by the parent into /proc/<init>/{uid,gid}_map while the init waits.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

use super::Error;

/// Renders mappings in the kernel's `inside outside count` line format.
pub fn render(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

pub fn write_maps(pid: Pid, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<(), Error> {
    // The kernel takes a gid map from a writer without CAP_SETGID over the new namespace's parent (a rootless
    // caller) only once setgroups(2) is denied in it, so that nobody drops a group to escape a deny rule; runc
    // does the same. The container then keeps the groups it was born with (the init skips setgroups).
    if !may_setgroups() {
        write_proc(pid, "setgroups", "deny")?;
    }
    write_proc(pid, "gid_map", &render(gid))?;
    write_proc(pid, "uid_map", &render(uid))
}

fn may_setgroups() -> bool {
    caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SETGID).unwrap_or(false)
}

/// Writes a /proc/<pid>/ file after checking it really is on procfs (a bind mount over it must not redirect us).
pub fn write_proc(pid: Pid, name: &str, data: &str) -> Result<(), Error> {
    let path = PathBuf::from(format!("/proc/{pid}/{name}"));
    let err = |source: std::io::Error| Error::Write {
        path: path.clone(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(err)?;
    let magic = crate::sys::fs_magic(f.as_fd()).map_err(|e| err(e.into()))?;
    if magic != libc::PROC_SUPER_MAGIC {
        return Err(err(std::io::Error::other("not on procfs")));
    }
    f.write_all(data.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_kernel_format() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":100000,"size":65536},{"containerID":70000,"hostID":5,"size":1}]"#)
                .unwrap();
        assert_eq!(render(&m), "0 100000 65536\n70000 5 1\n");
    }
}
