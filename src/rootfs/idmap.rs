//! Idmapped bind mounts (`idmap`/`ridmap`, a mount's uidMappings/gidMappings): a detached copy of the source
//! (open_tree), marked MOUNT_ATTR_IDMAP with a user namespace that carries the mappings, moved onto the target.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

/// Renders mappings in the kernel's `inside outside count` line format.
pub fn render(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The uid and gid maps for an idmapped mount: the mount's own, else the container's (as runc does).
pub fn maps_for(spec: &Spec, m: &Mount) -> Result<(String, String), String> {
    let nonempty = |v: &Option<Vec<LinuxIdMapping>>| v.clone().filter(|v| !v.is_empty());
    let linux = spec.linux().as_ref();
    let (uid, gid) = match (nonempty(m.uid_mappings()), nonempty(m.gid_mappings())) {
        (Some(u), Some(g)) => (u, g),
        (None, None) => match (
            linux.and_then(|l| nonempty(l.uid_mappings())),
            linux.and_then(|l| nonempty(l.gid_mappings())),
        ) {
            (Some(u), Some(g)) => (u, g),
            _ => {
                return Err(
                    "an idmapped mount needs uidMappings and gidMappings (on the mount or the container)"
                        .into(),
                )
            }
        },
        _ => return Err("uidMappings and gidMappings must be given together".into()),
    };
    Ok((render(&uid), render(&gid)))
}

/// A user namespace with the given maps, as an fd: a child born in a new user namespace waits while its maps are
/// written, then is killed; the namespace lives on through the fd.
fn userns_with(uid_map: &str, gid_map: &str) -> nix::Result<OwnedFd> {
    let pid = crate::sys::fork_idle_child(libc::CLONE_NEWUSER as u64)?;
    let result = (|| {
        let proc_pid = pid_in_proc(pid)?;
        for (name, data) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{proc_pid}/{name}"))
                .map_err(io_errno)?;
            if crate::sys::fs_magic(f.as_fd())? != libc::PROC_SUPER_MAGIC {
                return Err(Errno::EXDEV);
            }
            f.write_all(data.as_bytes()).map_err(io_errno)?;
        }
        std::fs::File::open(format!("/proc/{proc_pid}/ns/user"))
            .map(OwnedFd::from)
            .map_err(io_errno)
    })();
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    result
}

/// The child's pid as the mounted /proc knows it: before pivot_root in a new pid namespace, /proc is still the
/// host's, where our pid numbers mean other processes. A pidfd's fdinfo tells the pid in /proc's namespace.
fn pid_in_proc(pid: nix::unistd::Pid) -> nix::Result<i32> {
    let pidfd = crate::sys::pidfd_open(pid)?;
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))
        .map_err(io_errno)?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|p| *p > 0)
        .ok_or(Errno::ESRCH)
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Binds `source` onto the (already resolved) `target` as an idmapped mount.
pub fn bind(
    source: &Path,
    target: &OwnedFd,
    recursive: bool,
    uid_map: &str,
    gid_map: &str,
) -> Result<(), (&'static str, Errno)> {
    let userns =
        userns_with(uid_map, gid_map).map_err(|e| ("user namespace for the id maps", e))?;
    let src = CString::new(source.as_os_str().as_bytes()).map_err(|_| ("source", Errno::EINVAL))?;
    let tree = crate::sys::open_tree_clone(&src, recursive).map_err(|e| ("open_tree", e))?;
    use std::os::fd::AsRawFd;
    let attr = crate::sys::MountAttr {
        attr_set: crate::sys::MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..Default::default()
    };
    crate::sys::mount_setattr(tree.as_fd(), recursive, &attr)
        .map_err(|e| ("mount_setattr(MOUNT_ATTR_IDMAP)", e))?;
    crate::sys::move_mount_fd(tree.as_fd(), target.as_fd()).map_err(|e| ("move_mount", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn mount_maps_win_then_container_maps() {
        let m: Mount = serde_json::from_value(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 5}]
        }))
        .unwrap();
        let s = spec(serde_json::json!({"ociVersion": "1.0.2"}));
        assert_eq!(
            maps_for(&s, &m).unwrap(),
            ("0 1000 10\n".to_string(), "0 2000 5\n".to_string())
        );
        let bare: Mount = serde_json::from_value(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]
        }))
        .unwrap();
        assert!(maps_for(&s, &bare).is_err());
        let with_userns = spec(serde_json::json!({"ociVersion": "1.0.2", "linux": {
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }}));
        assert_eq!(maps_for(&with_userns, &bare).unwrap().0, "0 100000 65536\n");
        let half: Mount = serde_json::from_value(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]
        }))
        .unwrap();
        assert!(maps_for(&s, &half).is_err());
    }
}
