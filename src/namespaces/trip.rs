//! berth's own short trips into other namespaces: before the clone into the pid and time namespaces the init must be
//! born in, and during `create` into the init's mount namespace (open_tree copies only mounts of the caller's own).
//! A [`Trip`] saves berth's namespace before each step and returns to it on [`Trip::leave`], or on drop when an
//! error cuts the trip short, so that hooks and cleanup berth runs later stay in the runtime's namespaces.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// A failed step of a trip: what berth was doing, and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct Error {
    pub what: String,
    pub source: Errno,
}

fn err(what: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    let what = what.into();
    move |source| Error { what, source }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |e| Error {
        what,
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// The name of a namespace type under /proc/<pid>/ns.
fn ns_file(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        _ => "time",
    }
}

#[derive(Default)]
pub struct Trip {
    /// berth's own namespaces, in the order the trip left them.
    own: Vec<(OwnedFd, CloneFlags)>,
    /// berth's root and working directory, which entering a mount namespace resets.
    root_cwd: Option<(OwnedFd, OwnedFd)>,
}

impl Trip {
    pub fn new() -> Trip {
        Trip::default()
    }

    /// Takes one step: `change` alters berth's namespace of type `flag` (one type); what it changes is saved
    /// before, and recorded for the way back only once the step succeeded.
    fn step(
        &mut self,
        flag: CloneFlags,
        change: impl FnOnce() -> Result<(), Error>,
    ) -> Result<(), Error> {
        let path = format!("/proc/self/ns/{}", ns_file(flag));
        let own = std::fs::File::open(&path).map_err(io_err(format!("open {path}")))?;
        let root_cwd = if flag == CloneFlags::CLONE_NEWNS && self.root_cwd.is_none() {
            let open = |path: &str, what: &str| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH)
                    .open(path)
                    .map(OwnedFd::from)
                    .map_err(io_err(what))
            };
            Some((
                open("/", "open /")?,
                open(".", "open the working directory")?,
            ))
        } else {
            None
        };
        change()?;
        self.own.push((own.into(), flag));
        if root_cwd.is_some() {
            self.root_cwd = root_cwd;
        }
        Ok(())
    }

    /// setns into the namespace of type `flag` that `target` names (a namespace fd); `what` names it in errors.
    pub fn join(
        &mut self,
        target: BorrowedFd<'_>,
        flag: CloneFlags,
        what: &str,
    ) -> Result<(), Error> {
        self.step(flag, || {
            nix::sched::setns(target, flag).map_err(err(format!("setns {what}")))
        })
    }

    /// setns into the namespace of type `flag` of the process `pid` (through a pidfd, which names the process
    /// itself whatever its pid namespace).
    pub fn join_process(&mut self, pid: Pid, flag: CloneFlags, what: &str) -> Result<(), Error> {
        let pidfd = crate::sys::pidfd_open(pid).map_err(err(format!("pidfd_open {pid}")))?;
        self.join(pidfd.as_fd(), flag, what)
    }

    /// unshare a new namespace of type `flag`.
    pub fn unshare(&mut self, flag: CloneFlags, what: &str) -> Result<(), Error> {
        self.step(flag, || {
            nix::sched::unshare(flag).map_err(err(format!("unshare {what}")))
        })
    }

    /// Back to berth's own namespaces, root and working directory.
    pub fn leave(mut self) -> Result<(), Error> {
        self.restore()
    }

    fn restore(&mut self) -> Result<(), Error> {
        while let Some((fd, flag)) = self.own.pop() {
            nix::sched::setns(fd, flag).map_err(err(format!(
                "setns back to berth's own {} namespace",
                ns_file(flag)
            )))?;
        }
        if let Some((root, cwd)) = self.root_cwd.take() {
            nix::unistd::fchdir(root.as_raw_fd()).map_err(err("restore the root"))?;
            nix::unistd::chroot(".").map_err(err("restore the root"))?;
            nix::unistd::fchdir(cwd.as_raw_fd()).map_err(err("restore the working directory"))?;
        }
        Ok(())
    }
}

impl Drop for Trip {
    /// A trip cut short by an error still returns (best effort: the error that cut it is the one reported).
    fn drop(&mut self) {
        let _ = self.restore();
    }
}
