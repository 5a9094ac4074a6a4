//! OOM notifications for `events`: on v1 an eventfd registered through cgroup.event_control on memory.oom_control
//! (the kernel signals it on every OOM in the cgroup), on v2 an inotify watch on memory.events whose `oom_kill`
//! counter is compared with the last one seen.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{fs, Error, Result};

pub enum Watch {
    /// The eventfd, and memory.oom_control kept open (the registration lives as long as both fds).
    V1 {
        efd: EventFd,
        _control: std::fs::File,
    },
    V2 {
        inotify: Inotify,
        dir: PathBuf,
        seen: u64,
    },
    /// No memory controller: nothing will ever be reported.
    None,
}

fn sys(what: String) -> impl FnOnce(nix::errno::Errno) -> Error {
    move |source| Error::Sys { what, source }
}

impl Watch {
    pub fn v1(dir: &Path) -> Result<Watch> {
        let control_path = dir.join("memory.oom_control");
        let control = std::fs::File::open(&control_path).map_err(|source| Error::Io {
            op: "open",
            path: control_path,
            source,
        })?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(sys("eventfd".into()))?;
        use std::os::fd::AsRawFd;
        fs::write(
            dir,
            "cgroup.event_control",
            &format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
        )?;
        Ok(Watch::V1 {
            efd,
            _control: control,
        })
    }

    pub fn v2(dir: &Path) -> Result<Watch> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(sys("inotify_init".into()))?;
        let events = dir.join("memory.events");
        inotify
            .add_watch(&events, AddWatchFlags::IN_MODIFY)
            .map_err(sys(format!("inotify_add_watch {}", events.display())))?;
        let seen = oom_kills(dir);
        Ok(Watch::V2 {
            inotify,
            dir: dir.to_path_buf(),
            seen,
        })
    }

    /// The descriptor to poll for readability (None: never readable).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Watch::V1 { efd, .. } => Some(efd.as_fd()),
            Watch::V2 { inotify, .. } => Some(inotify.as_fd()),
            Watch::None => None,
        }
    }

    /// How many OOM events happened since the last call (after the fd polled readable).
    pub fn take(&mut self) -> u64 {
        match self {
            Watch::V1 { efd, .. } => efd.read().unwrap_or(0),
            Watch::V2 { inotify, dir, seen } => {
                let _ = inotify.read_events();
                let now = oom_kills(dir);
                let new = now.saturating_sub(*seen);
                *seen = now;
                new
            }
            Watch::None => 0,
        }
    }
}

fn oom_kills(dir: &Path) -> u64 {
    fs::read_flat_keyed(dir, "memory.events")
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}
