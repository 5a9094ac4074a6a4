//! `--pidfd-socket` (create, run, exec): the client's unix socket receives a pidfd of the container's init or of
//! the exec'd process, with SCM_RIGHTS, as runc ≥ 1.2 sends it. Connected before anything exists (a missing or
//! non-listening socket fails cleanly, nothing left behind); the pidfd is opened and sent by berth on the host once
//! the process exists and is still berth's child (unreaped, so its pid cannot have been reused), so the container
//! never holds the client's socket.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect pidfd socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pidfd socket: pidfd_open {pid}: {source}")]
    Open { pid: Pid, source: nix::Error },
    #[error("pidfd socket: send the pidfd of {pid}: {source}")]
    Send { pid: Pid, source: nix::Error },
}

/// Which process the pidfd is of; the word goes with it as the message's data, as runc's ("standard": the init,
/// "setns": an exec'd process).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Init,
    Exec,
}

/// The client's socket, connected.
pub struct PidfdSocket(UnixStream);

impl PidfdSocket {
    pub fn connect(path: &Path) -> Result<PidfdSocket, Error> {
        UnixStream::connect(path)
            .map(PidfdSocket)
            .map_err(|source| Error::Connect {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The descriptor, for the children that must close it at once (they inherit it with the clone).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }

    /// Opens a pidfd of `pid` (berth's unreaped child, or an init blocked on berth) and sends it.
    pub fn send(&self, pid: Pid, kind: Kind) -> Result<(), Error> {
        let pidfd = crate::sys::pidfd_open(pid).map_err(|source| Error::Open { pid, source })?;
        let word: &[u8] = match kind {
            Kind::Init => b"standard",
            Kind::Exec => b"setns",
        };
        let fds = [pidfd.as_fd().as_raw_fd()];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(word)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|source| Error::Send { pid, source })?;
        Ok(())
    }
}
