//! The typed protocols between berth and the processes it sets up, over SOCK_SEQPACKET sockets: one JSON message
//! per packet, every wait on berth's side bounded, every failure carried back with its context. The sequences are
//! written once, on [`Message`].

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, connect, listen, recv, send, sendmsg, socket, socketpair, AddressFamily, Backlog,
    ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use serde::{Deserialize, Serialize};

/// One message of berth's setup protocols. The child side may answer `Error(text)` at any step instead, and then
/// exits; EOF on its close-on-exec socket means it exec'd (or died).
///
/// **create** (`container::create` ↔ `process::init`, over a socketpair made before the clone):
/// 1. berth → init `Go(state)`: the id maps are written and the init is in its cgroup.
///    Staged setup (user namespace orderings one clone cannot express): init → berth `MapIds` once it made its
///    user namespace, berth → init `Go` once the maps are written; init → berth `Forked(pid)` when the
///    intermediate forked the real init into the new pid namespace (and exits).
/// 2. While it builds the rootfs, as needed: init → berth `IdmapRequest(n)`, berth → init `IdmapFd` with the
///    detached mount of config mount #n; init → berth `RunHooks`, berth runs prestart and createRuntime hooks,
///    berth → init `HooksDone`; init → berth `Console` with the pty master (foreground terminal); init → berth
///    `Warning(text)`, which berth logs.
/// 3. init → berth `Ready`: everything up to the program is prepared. berth records `created` and the pid file;
///    berth → init `Detach`; init → berth `Detached` (it no longer dies with berth).
///
/// **start** (`container::lifecycle::start` ↔ the init, over a connection to the init's [`Listener`] in the state
/// dir, made with the container's lock held):
/// 4. start → init `Start`. The init runs startContainer hooks and execs; EOF (the connection is close-on-exec)
///    means the program runs; init → start `Error(text)` is a failed hook or execve (the exec stub's raw record of
///    a failed execve is decoded into `Error` too). A client gone before `Start` ends the init, as a dead parent
///    does.
///
/// **exec** (`container::exec` ↔ `process::exec_into`, over a socketpair made before the clone):
/// 1. berth → intermediate `Go(state)`; it joins the init's namespaces, forks the process and sends
///    `Forked(pid)`, then exits.
/// 2. berth → process `GoExec { state, pid }`; the process sends `Console` with the pty master (exec -t in the
///    foreground) and `Warning`s, then execs: EOF, or `Error(text)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    // berth -> init
    /// Ids are mapped and the init (or exec's intermediate) sits in its cgroup: go on with the setup. Carries the
    /// state hooks receive.
    Go(crate::oci_state::OciState),
    /// (exec) As Go, for the exec'd process, with its own host pid (a seccomp listener is told it).
    GoExec {
        state: crate::oci_state::OciState,
        pid: i32,
    },
    /// The runtime-namespace hooks (prestart, createRuntime) have run.
    HooksDone,
    /// create is done: stop being tied to the parent's life.
    Detach,
    /// (start) Run the startContainer hooks and exec the program.
    Start,
    // init -> berth
    /// (staged setup) the init made its user namespace and needs its id maps.
    MapIds,
    /// (staged setup, exec) the real init or exec'd process was forked with this host pid; the intermediate exits.
    Forked(i32),
    /// The namespaces and mounts exist: run prestart and createRuntime hooks now.
    RunHooks,
    /// Everything up to the user program is prepared; the init will wait for start.
    Ready,
    /// The init no longer dies with berth.
    Detached,
    /// Setup (or start) failed; the text names what and where, in the words berth reports.
    Error(String),
    /// Something the parent logs as a warning, setup going on (an ambient capability the kernel refused).
    Warning(String),
    /// The init needs the idmapped mount of config mount #N (index into `mounts`): only the host's berth may set
    /// MOUNT_ATTR_IDMAP on a mount of a filesystem the container's user namespace does not own.
    IdmapRequest(usize),
    /// The pty master of a terminal that berth relays itself (foreground `run`, `exec -t`), attached (SCM_RIGHTS).
    Console,
    // berth -> init
    /// The detached idmapped mount asked for, attached to this message (SCM_RIGHTS).
    IdmapFd,
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

/// The init's listening socket for `start`, bound in the state dir: its path's existence marks the container
/// `created`. Close-on-exec, so a successful execve closes it.
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Binds and listens at `path` (kept short by the caller: sun_path has 108 bytes).
    pub fn bind(path: &str) -> std::io::Result<Listener> {
        let fd = seqpacket_socket()?;
        bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        listen(&fd, Backlog::new(128)?)?;
        Ok(Listener { fd })
    }

    /// The next connection, close-on-exec.
    pub fn accept(&self) -> Result<Channel, Error> {
        loop {
            match crate::sys::accept_cloexec(self.fd.as_fd()) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(fd) => return Ok(Channel { fd }),
            }
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A close-on-exec SOCK_SEQPACKET unix socket: the start connection keeps message boundaries, like the channel.
fn seqpacket_socket() -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// Connects to the [`Listener`] at `path` (`start` to the init). ECONNREFUSED: nobody listens there any more.
pub fn connect_to(path: &str) -> std::io::Result<Channel> {
    let fd = seqpacket_socket()?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(Channel { fd })
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<(), Error> {
        let bytes = serde_json::to_vec(msg).expect("messages serialise");
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Sends a message with a file descriptor attached (SCM_RIGHTS).
    pub fn send_fd(&self, msg: &Message, fd: BorrowedFd<'_>) -> Result<(), Error> {
        let bytes = serde_json::to_vec(msg).expect("messages serialise");
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Receives one message that must carry a file descriptor (sent with [`Channel::send_fd`]); it arrives
    /// close-on-exec. An error report from the other side comes back as the message, without a descriptor.
    pub fn recv_fd(&self, timeout: Option<Duration>) -> Result<(Message, Option<OwnedFd>), Error> {
        self.wait(timeout)?;
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) = loop {
            match crate::sys::recv_with_fds(self.fd.as_fd(), &mut buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                // Every descriptor received is owned, so none leaks; the first is the message's.
                Ok((n, fds)) => break (n, fds.into_iter().next()),
            }
        };
        if n == 0 {
            return Err(Error::Closed);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(|e| Error::Decode(e.to_string()))?;
        Ok((msg, fd))
    }

    /// Waits until a message is there, at most `timeout` (None: no bound).
    fn wait(&self, timeout: Option<Duration>) -> Result<(), Error> {
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
        Ok(())
    }

    /// Receives one message, waiting at most `timeout` (None: as long as it takes, e.g. the init's own side whose
    /// parent death kills it anyway).
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Message, Error> {
        self.wait(timeout)?;
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

    #[test]
    fn start_connects_sends_start_and_sees_eof_or_a_refusal() {
        let dir = std::env::temp_dir().join(format!("berth-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("start.sock").to_string_lossy().into_owned();
        let _ = std::fs::remove_file(&path);
        let listener = Listener::bind(&path).unwrap();
        let client = connect_to(&path).unwrap();
        client.send(&Message::Start).unwrap();
        let init = listener.accept().unwrap();
        assert_eq!(init.recv(None).unwrap(), Message::Start);
        init.send(&Message::Error("startContainer hook failed".into()))
            .unwrap();
        assert_eq!(
            client.recv(Some(Duration::from_secs(1))).unwrap(),
            Message::Error("startContainer hook failed".into())
        );
        drop(init);
        assert!(matches!(client.recv(None), Err(Error::Closed)));
        // Nobody listening any more (the init exec'd or died): `start` tells ECONNREFUSED apart.
        drop(listener);
        let refused = connect_to(&path).err().unwrap();
        assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_descriptor_travels_with_its_message() {
        use std::io::{Read, Write};
        let (a, b) = pair().unwrap();
        let (rd, wr) = nix::unistd::pipe().unwrap();
        a.send_fd(&Message::IdmapFd, rd.as_fd()).unwrap();
        drop(rd);
        let (msg, fd) = b.recv_fd(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(msg, Message::IdmapFd);
        let fd = fd.expect("a descriptor");
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0, "received close-on-exec");
        std::fs::File::from(wr).write_all(b"payload").unwrap();
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "payload", "the same pipe, not a copy");
        // A plain message read with recv_fd has no descriptor.
        a.send(&Message::Ready).unwrap();
        let (msg, fd) = b.recv_fd(None).unwrap();
        assert!(msg == Message::Ready && fd.is_none());
        drop(a);
        assert!(matches!(b.recv_fd(None), Err(Error::Closed)));
    }
}
