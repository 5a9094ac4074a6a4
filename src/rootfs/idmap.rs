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

use crate::config::Config;
use crate::config::Mapping;
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
    pub fn tree(&mut self, config: &Config, index: usize, init: Pid) -> Result<OwnedFd, Error> {
        let m = config.mounts.get(index).ok_or_else(|| Error::Invalid {
            src: PathBuf::new(),
            dest: PathBuf::new(),
            reason: format!("the init asked for mount #{index}, which config.json lacks"),
        })?;
        let src = m.source.clone();
        let dest = m.destination.clone();
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
        let opts = &m.options;
        if !m.bind {
            return Err(invalid(format!(
                "the init asked for the source of mount #{index}, which is not a bind"
            )));
        }
        let userns = if let Some(mapping) = &m.idmap {
            let fd = self
                .userns_for(mapping.clone(), init)
                .map_err(|(what, e)| sys(what, e))?;
            Some(fd.as_raw_fd())
        } else {
            None
        };
        let c_src = CString::new(src.as_os_str().as_bytes())
            .map_err(|_| invalid("NUL in source".into()))?;
        // As runc: the copy is recursive for rbind, the id mapping for ridmap.
        let trip = if config.namespaces.mount {
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
