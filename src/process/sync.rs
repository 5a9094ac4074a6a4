//! The typed parent <-> init protocol over a SOCK_SEQPACKET socketpair: one JSON message per packet, every wait
//! bounded, every failure carried back with its context.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    // parent -> init
    /// Ids are mapped and the init sits in its cgroup: go on with the setup. Carries the state hooks receive.
    Go(crate::container::state::OciState),
    /// (exec) As Go, for the exec'd process, with its own host pid (a seccomp listener is told it).
    GoExec {
        state: crate::container::state::OciState,
        pid: i32,
    },
    /// The runtime-namespace hooks (prestart, createRuntime) have run.
    HooksDone,
    /// create is done: stop being tied to the parent's life.
    Detach,
    // init -> parent
    /// (staged setup) the init made its user namespace and needs its id maps.
    MapIds,
    /// (staged setup) the real init was forked with this host pid; the intermediate exits.
    Forked(i32),
    /// The namespaces and mounts exist: run prestart and createRuntime hooks now.
    RunHooks,
    /// Everything up to the user program is prepared; the init will wait for start.
    Ready,
    Detached,
    /// Setup failed; the text names what and where.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sync socket: {0}")]
    Sys(#[from] nix::Error),
    #[error("sync: the other side closed the channel")]
    Closed,
    #[error("sync: timed out after {0:?} waiting for the other side")]
    Timeout(Duration),
    #[error("sync: bad message: {0}")]
    Decode(String),
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, init end). Both close-on-exec.
pub fn pair() -> Result<(Channel, Channel), Error> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<(), Error> {
        let bytes = serde_json::to_vec(msg).expect("messages serialise");
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Receives one message, waiting at most `timeout` (None: as long as it takes, e.g. the init's own side whose
    /// parent death kills it anyway).
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Message, Error> {
        if let Some(t) = timeout {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(t.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX);
            loop {
                match poll(&mut fds, ms) {
                    Ok(0) => return Err(Error::Timeout(t)),
                    Ok(_) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Err(Error::Closed);
        }
        // The exec stub's report of a failed program execve (it cannot speak JSON).
        if let Some(text) = super::exec_stub::decode_failure(&buf[..n]) {
            return Ok(Message::Error(text));
        }
        serde_json::from_slice(&buf[..n]).map_err(|e| Error::Decode(e.to_string()))
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_timeout_and_close() {
        let (a, b) = pair().unwrap();
        a.send(&Message::Error("mount /proc: EPERM".into()))
            .unwrap();
        assert_eq!(
            b.recv(Some(Duration::from_secs(1))).unwrap(),
            Message::Error("mount /proc: EPERM".into())
        );
        assert!(matches!(
            b.recv(Some(Duration::from_millis(10))),
            Err(Error::Timeout(_))
        ));
        drop(a);
        assert!(matches!(b.recv(None), Err(Error::Closed)));
    }
}
