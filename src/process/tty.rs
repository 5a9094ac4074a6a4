//! Terminals, as runc does them: with `process.terminal`, the process inside the container opens a new pty from the
//! container's own `/dev/ptmx` (devpts newinstance), sizes it (`consoleSize`), binds the slave over `/dev/console`,
//! sends the master away and makes the slave its controlling terminal and stdio. With `--console-socket` the master
//! goes to the client (containerd's shim, conmon); in the foreground it goes to berth over the setup channel, and
//! berth relays it (container::foreground).
//!
//! The protocol is runc's: one `sendmsg` on the connected unix stream socket carrying a single fd in an
//! `SCM_RIGHTS` message and, as the data, the name of the master ("/dev/ptmx"). Clients read the name into a buffer
//! of up to 4096 bytes and expect exactly one fd.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// What the master is called in the message (runc sends the name of its master file, /dev/ptmx).
pub const MASTER_NAME: &str = "/dev/ptmx";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect console socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("console: /dev/console: {0}")]
    Resolve(#[from] crate::resolve::Error),
    #[error("console: send the pty master to berth: {0}")]
    Parent(String),
    #[error("console: {what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |source| Error::Sys { what, source }
}

/// Connects to the console socket (in the parent, before the clone: a missing or non-listening socket fails early
/// and leaves nothing behind). The stream is close-on-exec; the process that opens the pty inherits it.
pub fn connect(path: &Path) -> Result<UnixStream, Error> {
    UnixStream::connect(path).map_err(|source| Error::Connect {
        path: path.to_path_buf(),
        source,
    })
}

/// A new pty of the current mount namespace's /dev/ptmx.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pty from /dev/ptmx as the calling process sees it (inside the container after pivot_root).
pub fn open_pty() -> Result<Pty, Error> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("open /dev/ptmx"))?;
    nix::pty::unlockpt(&master).map_err(sys("unlockpt"))?;
    let slave = crate::sys::open_pty_peer(master.as_fd()).map_err(sys("ioctl(TIOCGPTPEER)"))?;
    let master = crate::sys::pty_master_fd(master);
    Ok(Pty { master, slave })
}

/// Applies `process.consoleSize` (height, width).
pub fn set_size(slave: BorrowedFd<'_>, height: u64, width: u64) -> Result<(), Error> {
    let clamp = |v: u64| v.min(u16::MAX as u64) as u16;
    crate::sys::set_window_size(slave, clamp(height), clamp(width))
        .map_err(sys("ioctl(TIOCSWINSZ)"))
}

/// Binds the slave over /dev/console (an empty file is made first if the image has none), so that programs that
/// write to /dev/console reach the terminal, as under runc.
pub fn bind_console(slave: BorrowedFd<'_>) -> Result<(), Error> {
    let root = crate::resolve::Root::open(Path::new("/"))?;
    let target = root.touch(Path::new("/dev/console"))?;
    let src = format!("/proc/self/fd/{}", slave.as_raw_fd());
    let dst = format!("/proc/self/fd/{}", target.as_raw_fd());
    mount(
        Some(src.as_str()),
        dst.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys("bind the pty over /dev/console"))
}

/// Sends the master over the console socket, runc's way.
pub fn send_master(socket: &UnixStream, master: BorrowedFd<'_>) -> Result<(), Error> {
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(MASTER_NAME.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(sys("send the pty master over the console socket"))?;
    Ok(())
}

/// Makes the slave the controlling terminal of a new session and the process's stdin, stdout and stderr.
pub fn become_stdio(slave: OwnedFd) -> Result<(), Error> {
    crate::sys::take_controlling_tty(slave.as_raw_fd())
        .map_err(sys("setsid + ioctl(TIOCSCTTY)"))?;
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd).map_err(sys("dup2 the pty slave to stdio"))?;
    }
    Ok(())
}

/// Where the pty master goes: the client's console socket, or berth's own parent over the setup channel (it relays
/// the terminal itself: foreground `run`, `exec -t`).
pub enum MasterTo<'a> {
    Socket(&'a UnixStream),
    Parent(&'a super::sync::Channel),
}

impl MasterTo<'_> {
    fn send(&self, master: BorrowedFd<'_>) -> Result<(), Error> {
        match self {
            MasterTo::Socket(socket) => send_master(socket, master),
            MasterTo::Parent(channel) => channel
                .send_fd(&super::sync::Message::Console, master)
                .map_err(|e| Error::Parent(e.to_string())),
        }
    }
}

/// The whole terminal sequence for a process already inside the container's mount namespace (and root): new pty,
/// size, optionally /dev/console, master sent, slave as stdio. `owner`: the uid that will run in it gets the slave
/// (its group stays the one devpts gave it, tty's gid=5 in the usual mount options), so that a non-root user can
/// reopen /dev/tty; runc does the same and, like runc, an owner the user namespace cannot map is left alone.
pub fn setup_console(
    to: MasterTo<'_>,
    size: Option<(u64, u64)>,
    console: bool,
    owner: Option<u32>,
) -> Result<(), Error> {
    let pty = open_pty()?;
    if let Some((h, w)) = size {
        set_size(pty.slave.as_fd(), h, w)?;
    }
    if console {
        bind_console(pty.slave.as_fd())?;
    }
    if let Some(uid) = owner {
        match nix::unistd::fchown(pty.slave.as_raw_fd(), Some(uid.into()), None) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EPERM) => {}
            Err(e) => {
                return Err(Error::Sys {
                    what: "chown the pty slave",
                    source: e,
                })
            }
        }
    }
    to.send(pty.master.as_fd())?;
    drop(pty.master);
    become_stdio(pty.slave)
}
