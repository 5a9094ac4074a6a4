//! Idmapped bind mounts (`idmap`/`ridmap`, a mount's uidMappings/gidMappings), made as runc ≥ 1.2 makes them.
//!
//! MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the user namespace that owns the source's filesystem (the host's),
//! which an init inside the container's own user namespace lacks. So `create`, with the host's credentials, makes
//! each idmapped mount when the init asks for it ([`Maker`]): a detached copy of the source (open_tree with
//! OPEN_TREE_CLONE, taken inside the container's mount namespace so that it resolves as the container's other binds
//! and keeps the locks that namespace put on its mounts), marked MOUNT_ATTR_IDMAP with a user namespace carrying the
//! mount's mappings, or the container's own user namespace when the mount gives none. The descriptor goes to the
//! init over the sync channel; the init sets the mount's other attributes on it and moves it onto the destination
//! it resolved inside the rootfs, in config order. The same path carries every bind of an init in a user namespace
//! (not idmapped then): its source opened with the host's credentials.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::options::{self, MountOptions};
use crate::namespaces::trip::Trip;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("idmapped mount {src} on {dest}: {what}: {source}{hint}")]
    Sys {
        src: PathBuf,
        dest: PathBuf,
        what: String,
        source: Errno,
        hint: &'static str,
    },
    /// A plain bind whose source `create` takes for an init in a user namespace.
    #[error("mount {src} on {dest}: bind source: {what}: {source}")]
    Bind {
        src: PathBuf,
        dest: PathBuf,
        what: String,
        source: Errno,
    },
    #[error("idmapped mount {src} on {dest}: {reason}")]
    Invalid {
        src: PathBuf,
        dest: PathBuf,
        reason: String,
    },
}

/// The kernel's limit on the lines of one uid_map or gid_map.
const MAX_EXTENTS: usize = 340;

/// Whose mappings an idmapped mount carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// The mount's own uidMappings and gidMappings, in the kernel's map format.
    Own { uid: String, gid: String },
    /// None given: the container's user namespace (as runc does).
    Container,
}

/// Is this mount idmapped: `idmap`/`ridmap`, or mappings of its own (runc idmaps those too)?
pub fn is_idmapped(m: &Mount, opts: &MountOptions) -> bool {
    opts.idmap.is_some() || has_own(m.uid_mappings()) || has_own(m.gid_mappings())
}

fn has_own(v: &Option<Vec<LinuxIdMapping>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// The mappings of an idmapped mount: its own, else the container's user namespace.
pub fn mapping_for(spec: &Spec, m: &Mount) -> Result<Mapping, String> {
    match (m.uid_mappings(), m.gid_mappings()) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => {
            check_ranges("uidMappings", u)?;
            check_ranges("gidMappings", g)?;
            Ok(Mapping::Own {
                uid: render(u),
                gid: render(g),
            })
        }
        (u, g) if has_own(u) || has_own(g) => {
            Err("uidMappings and gidMappings must be given together".into())
        }
        _ if has_user_ns(spec) => Ok(Mapping::Container),
        _ => Err(
            "an idmapped mount needs uidMappings and gidMappings, on the mount or through a container user \
             namespace"
                .into(),
        ),
    }
}

fn has_user_ns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|n| n.typ() == LinuxNamespaceType::User))
}

/// The rules the kernel applies to a written id map, checked before anything exists: at most 340 lines, no empty
/// or overflowing range, and no two ranges overlapping on either side.
pub fn check_ranges(what: &str, maps: &[LinuxIdMapping]) -> Result<(), String> {
    if maps.len() > MAX_EXTENTS {
        return Err(format!(
            "{what}: {} ranges, the kernel takes at most {MAX_EXTENTS}",
            maps.len()
        ));
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        let (c, h, n) = (m.container_id(), m.host_id(), m.size());
        if n == 0 {
            return Err(format!("{what}: range {c} {h} {n} is empty"));
        }
        if end(c, n) > u64::from(u32::MAX) || end(h, n) > u64::from(u32::MAX) {
            return Err(format!("{what}: range {c} {h} {n} goes past id 4294967294"));
        }
        for o in &maps[..i] {
            let overlap =
                |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, n);
            if overlap(c, o.container_id()) || overlap(h, o.host_id()) {
                return Err(format!(
                    "{what}: ranges {c} {h} {n} and {} {} {} overlap",
                    o.container_id(),
                    o.host_id(),
                    o.size()
                ));
            }
        }
    }
    Ok(())
}

/// Renders mappings in the kernel's `inside outside count` line format.
pub fn render(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// `create`'s side: makes the idmapped mounts the init asks for. A user namespace per distinct mapping is made once
/// and kept until `create` ends (runc caches them too).
#[derive(Default)]
pub struct Maker {
    userns: Vec<(Mapping, OwnedFd)>,
}

impl Maker {
    /// The detached copy of the source of config mount `index` (idmapped when the mount says so), for the init
    /// `init` to attach. Also asked for every bind of an init in a user namespace: the source is then opened with
    /// the host's credentials, which the container's user may lack (runc passes such sources from the host too).
    pub fn tree(&mut self, spec: &Spec, index: usize, init: Pid) -> Result<OwnedFd, Error> {
        let m = spec
            .mounts()
            .as_ref()
            .and_then(|ms| ms.get(index))
            .ok_or_else(|| Error::Invalid {
                src: PathBuf::new(),
                dest: PathBuf::new(),
                reason: format!("the init asked for mount #{index}, which config.json lacks"),
            })?;
        let src = m.source().clone().unwrap_or_default();
        let dest = m.destination().clone();
        let invalid = |reason: String| Error::Invalid {
            src: src.clone(),
            dest: dest.clone(),
            reason,
        };
        let sys = |what: &str, source: Errno| Error::Sys {
            src: src.clone(),
            dest: dest.clone(),
            what: what.to_string(),
            source,
            hint: if what.starts_with("mount_setattr") && source == Errno::EINVAL {
                " (does the source's filesystem support idmapped mounts?)"
            } else {
                ""
            },
        };
        let opts = options::parse(m.options().as_deref().unwrap_or(&[])).map_err(&invalid)?;
        if !opts.bind && m.typ().as_deref() != Some("bind") {
            return Err(invalid(format!(
                "the init asked for the source of mount #{index}, which is not a bind"
            )));
        }
        let userns = if is_idmapped(m, &opts) {
            let mapping = mapping_for(spec, m).map_err(&invalid)?;
            let fd = self
                .userns_for(mapping, init)
                .map_err(|(what, e)| sys(what, e))?;
            Some(fd.as_raw_fd())
        } else {
            None
        };
        let c_src = CString::new(src.as_os_str().as_bytes())
            .map_err(|_| invalid("NUL in source".into()))?;
        // As runc: the copy is recursive for rbind, the id mapping for ridmap.
        let trip = if super::has_mount_ns(spec) {
            // open_tree copies only mounts of the caller's own mount namespace.
            let mut trip = Trip::new();
            trip.join_process(
                init,
                CloneFlags::CLONE_NEWNS,
                "into the container's mount namespace",
            )
            .map_err(|e| sys(&e.what, e.source))?;
            Some(trip)
        } else {
            None
        };
        let made = (|| {
            let tree = crate::sys::open_tree_clone(&c_src, opts.recursive_bind).map_err(|e| {
                if userns.is_some() {
                    sys("open_tree(OPEN_TREE_CLONE)", e)
                } else {
                    Error::Bind {
                        src: src.clone(),
                        dest: dest.clone(),
                        what: "open_tree(OPEN_TREE_CLONE)".into(),
                        source: e,
                    }
                }
            })?;
            if let Some(userns) = userns {
                let attr = crate::sys::MountAttr {
                    attr_set: crate::sys::MOUNT_ATTR_IDMAP,
                    userns_fd: userns as u64,
                    ..Default::default()
                };
                crate::sys::mount_setattr(tree.as_fd(), opts.idmap == Some(true), &attr)
                    .map_err(|e| sys("mount_setattr(MOUNT_ATTR_IDMAP)", e))?;
            }
            Ok(tree)
        })();
        if let Some(trip) = trip {
            trip.leave().map_err(|e| sys(&e.what, e.source))?;
        }
        made
    }

    fn userns_for(
        &mut self,
        mapping: Mapping,
        init: Pid,
    ) -> Result<BorrowedFd<'_>, (&'static str, Errno)> {
        let i = match self.userns.iter().position(|(m, _)| *m == mapping) {
            Some(i) => i,
            None => {
                let fd = match &mapping {
                    Mapping::Own { uid, gid } => userns_with(uid, gid)
                        .map_err(|e| ("user namespace for the mount's mappings", e))?,
                    Mapping::Container => std::fs::File::open(format!("/proc/{init}/ns/user"))
                        .map(OwnedFd::from)
                        .map_err(|e| ("open the container's user namespace", io_errno(e)))?,
                };
                self.userns.push((mapping, fd));
                self.userns.len() - 1
            }
        };
        Ok(self.userns[i].1.as_fd())
    }
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

/// The child's pid as the mounted /proc knows it (berth may run where /proc belongs to another pid namespace than
/// its own). A pidfd's fdinfo tells the pid in /proc's namespace.
fn pid_in_proc(pid: Pid) -> nix::Result<i32> {
    let pidfd = crate::sys::pidfd_open(pid)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    fn mount(v: serde_json::Value) -> Mount {
        serde_json::from_value(v).unwrap()
    }

    fn maps(v: serde_json::Value) -> Vec<LinuxIdMapping> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn mount_maps_win_then_the_container_user_namespace() {
        let m = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 5}]
        }));
        let s = spec(serde_json::json!({"ociVersion": "1.0.2"}));
        assert_eq!(
            mapping_for(&s, &m).unwrap(),
            Mapping::Own {
                uid: "0 1000 10\n".into(),
                gid: "0 2000 5\n".into()
            }
        );
        let bare = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]
        }));
        assert!(mapping_for(&s, &bare)
            .unwrap_err()
            .contains("user namespace"));
        let new_userns = spec(serde_json::json!({"ociVersion": "1.0.2", "linux": {
            "namespaces": [{"type": "user"}, {"type": "mount"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }}));
        assert_eq!(mapping_for(&new_userns, &bare).unwrap(), Mapping::Container);
        // A joined user namespace carries its mappings too (runc passes its path).
        let joined = spec(serde_json::json!({"ociVersion": "1.0.2", "linux": {
            "namespaces": [{"type": "user", "path": "/proc/1/ns/user"}, {"type": "mount"}]
        }}));
        assert_eq!(mapping_for(&joined, &bare).unwrap(), Mapping::Container);
        let half = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]
        }));
        assert!(mapping_for(&new_userns, &half)
            .unwrap_err()
            .contains("together"));
        let bad = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                            {"containerID": 5, "hostID": 5000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 5}]
        }));
        assert!(mapping_for(&new_userns, &bad)
            .unwrap_err()
            .contains("overlap"));
    }

    #[test]
    fn idmapped_means_an_option_or_mappings_of_its_own() {
        let with = |v: serde_json::Value| {
            let m = mount(v);
            let opts = options::parse(m.options().as_deref().unwrap_or(&[])).unwrap();
            is_idmapped(&m, &opts)
        };
        assert!(with(
            serde_json::json!({"destination": "/m", "source": "/s", "options": ["rbind", "ridmap"]})
        ));
        assert!(with(
            serde_json::json!({"destination": "/m", "source": "/s", "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
        ));
        assert!(!with(
            serde_json::json!({"destination": "/m", "source": "/s", "options": ["rbind"]})
        ));
    }

    #[test]
    fn ranges_follow_the_kernels_rules() {
        let ok = |v| check_ranges("uidMappings", &maps(v));
        ok(
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536},
            {"containerID": 65536, "hostID": 0, "size": 1}]),
        )
        .unwrap();
        // Adjacent is not overlapping.
        ok(
            serde_json::json!([{"containerID": 0, "hostID": 10, "size": 10},
            {"containerID": 10, "hostID": 20, "size": 10}]),
        )
        .unwrap();
        ok(serde_json::json!([{"containerID": 0, "hostID": 0, "size": 4294967295u32}])).unwrap();
        for (bad, want) in [
            (
                serde_json::json!([{"containerID": 0, "hostID": 1, "size": 0}]),
                "empty",
            ),
            (
                serde_json::json!([{"containerID": 1, "hostID": 1, "size": 4294967295u32}]),
                "past",
            ),
            (
                serde_json::json!([{"containerID": 0, "hostID": 100, "size": 10},
                {"containerID": 9, "hostID": 200, "size": 1}]),
                "overlap",
            ),
            (
                serde_json::json!([{"containerID": 0, "hostID": 100, "size": 10},
                {"containerID": 50, "hostID": 95, "size": 10}]),
                "overlap",
            ),
        ] {
            let err = ok(bad).unwrap_err();
            assert!(
                err.contains(want) && err.starts_with("uidMappings"),
                "{err}"
            );
        }
        let many: Vec<_> = (0..341)
            .map(|i| serde_json::json!({"containerID": i, "hostID": 1000 + i, "size": 1}))
            .collect();
        assert!(ok(serde_json::Value::Array(many))
            .unwrap_err()
            .contains("340"));
    }
}
