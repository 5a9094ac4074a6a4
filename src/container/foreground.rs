//! `run` and `exec` in the foreground: berth waits for the process, forwarding the signals it receives, and exits
//! with its status (128+N when killed by signal N).
//!
//! With process.terminal and no console socket, berth is the terminal's client itself, as runc is: the container's
//! pty master comes back to berth, which puts its own terminal (the "host console") in raw mode, copies its window
//! size to the pty (again on each SIGWINCH) and relays stdin to the master and the master to stdout, all in one
//! poll loop with the signals. The host console is restored however berth leaves the loop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, OutputFlags, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub struct Forwarder {
    fd: SignalFd,
}

/// Every signal berth can catch. The init unblocks them all before it runs anything of the container.
fn forwardable() -> SigSet {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    set
}

impl Forwarder {
    /// Blocks the signals (they queue for the signalfd instead of acting on berth).
    pub fn block() -> Result<Forwarder> {
        let set = forwardable();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .context("block signals for forwarding")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
        Ok(Forwarder { fd })
    }

    /// Forwards signals to `pid` until it exits; returns the shell-style exit code.
    pub fn wait(self, pid: Pid) -> Result<i32> {
        loop {
            if let Some(code) = reap(pid)? {
                return Ok(code);
            }
            let Some(info) = self.fd.read_signal().context("read signalfd")? else {
                continue;
            };
            forward(info.ssi_signo as i32, pid);
        }
    }

    /// [`Forwarder::wait`] for a process whose terminal berth relays: also copies between `term`'s master and
    /// berth's stdio and follows the window size. Returns once the process has exited and the output it left in
    /// the pty is written out; `term` is restored when it drops, whatever the outcome.
    pub fn relay(self, pid: Pid, term: Relay) -> Result<i32> {
        // Again now that the process runs (runc's moment), then on each SIGWINCH.
        term.resize();
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let mut out = Output {
            fd: stdout.as_fd(),
            ok: true,
        };
        let mut stdin_open = true;
        let mut master_open = true;
        // Typed bytes the pty has not taken yet (its input queue is full): stdin waits until they are in.
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut code = reap(pid)?;
        while code.is_none() {
            let (sig_ev, master_ev, stdin_ev) = {
                let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
                let mut master_at = None;
                if master_open {
                    let mut ev = PollFlags::POLLIN;
                    if !pending.is_empty() {
                        ev |= PollFlags::POLLOUT;
                    }
                    master_at = Some(fds.len());
                    fds.push(PollFd::new(term.master.as_fd(), ev));
                }
                let mut stdin_at = None;
                if stdin_open && pending.is_empty() {
                    stdin_at = Some(fds.len());
                    fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("poll the terminal"),
                    Ok(_) => {}
                }
                let ev = |at: Option<usize>| {
                    at.and_then(|i| fds[i].revents())
                        .unwrap_or(PollFlags::empty())
                };
                (ev(Some(0)), ev(master_at), ev(stdin_at))
            };
            if !sig_ev.is_empty() {
                if let Some(info) = self.fd.read_signal().context("read signalfd")? {
                    match info.ssi_signo as i32 {
                        libc::SIGCHLD => code = reap(pid)?,
                        libc::SIGWINCH => term.resize(),
                        signo => forward(signo, pid),
                    }
                }
            }
            if master_ev.contains(PollFlags::POLLOUT) {
                match nix::unistd::write(&term.master, &pending) {
                    Ok(n) => drop(pending.drain(..n)),
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(_) => pending.clear(),
                }
            }
            if master_ev.intersects(gone_or_ready()) {
                match nix::unistd::read(term.master.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(Errno::EIO) => master_open = false,
                    Ok(n) => out.write(&buf[..n]),
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e).context("read the pty master"),
                }
            }
            if !master_open {
                pending.clear();
            }
            if stdin_ev.intersects(gone_or_ready()) {
                match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                    // EOF: as runc, stop reading and send nothing (no ^D); the process decides when to end.
                    Ok(0) => stdin_open = false,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(_) => stdin_open = false,
                }
                if !master_open {
                    pending.clear();
                }
            }
        }
        // The process is gone: write out what it left in the pty, then stop (as runc, not waiting for other holders
        // of the slave).
        if master_open {
            loop {
                match nix::unistd::read(term.master.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => out.write(&buf[..n]),
                    Err(Errno::EINTR) => {}
                    _ => break,
                }
            }
        }
        drop(term);
        Ok(code.expect("the loop ends with an exit code"))
    }
}

/// Readable, or nothing more to come (a closed descriptor included: its read fails and it is dropped from the loop
/// instead of waking poll forever).
fn gone_or_ready() -> PollFlags {
    PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL
}

/// Sends a signal berth received on to the process. SIGCHLD is berth's own; SIGWINCH is not forwarded (runc
/// neither): with a relayed terminal it resizes the pty, the kernel tells the process.
fn forward(signo: i32, pid: Pid) {
    if signo == libc::SIGCHLD || signo == libc::SIGWINCH {
        return;
    }
    if let Ok(sig) = Signal::try_from(signo) {
        let _ = nix::sys::signal::kill(pid, sig);
    }
}

/// berth's stdout in the relay; once a write fails (reader gone), the rest is dropped, as runc's copy does.
struct Output<'a> {
    fd: BorrowedFd<'a>,
    ok: bool,
}

impl Output<'_> {
    fn write(&mut self, mut data: &[u8]) {
        while self.ok && !data.is_empty() {
            match nix::unistd::write(self.fd, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    let mut fds = [PollFd::new(self.fd, PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::NONE);
                }
                Err(_) => self.ok = false,
            }
        }
    }
}

/// The terminal berth runs in, as runc finds it: the first of stderr, stdout and stdin that is a terminal, else the
/// controlling terminal (/dev/tty). Found before anything of the container exists, so that its absence fails clean.
pub struct HostConsole {
    /// Our own close-on-exec descriptor of it, numbered from `min_fd` up (out of any --preserve-fds range).
    fd: OwnedFd,
    /// Its mode before berth set it raw; put back on drop.
    saved: Option<Termios>,
}

impl HostConsole {
    pub fn find(min_fd: i32) -> Result<HostConsole> {
        let dup = |fd: BorrowedFd<'_>| -> Result<OwnedFd> {
            crate::sys::dup_cloexec_from(fd, min_fd).context("dup the terminal")
        };
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        for fd in [stderr.as_fd(), stdout.as_fd(), stdin.as_fd()] {
            if termios::tcgetattr(fd).is_ok() {
                return Ok(HostConsole {
                    fd: dup(fd)?,
                    saved: None,
                });
            }
        }
        let tty = crate::sys::open(
            "/dev/tty",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| anyhow!("open /dev/tty: {}", lower(e.desc())))?;
        termios::tcgetattr(&tty)
            .map_err(|e| anyhow!("unable to get console: {}", lower(e.desc())))?;
        Ok(HostConsole {
            fd: dup(tty.as_fd())?,
            saved: None,
        })
    }

    /// (rows, columns) of the terminal, if it says.
    pub fn size(&self) -> Option<(u16, u16)> {
        crate::sys::window_size(self.fd.as_fd())
            .ok()
            .map(|ws| (ws.ws_row, ws.ws_col))
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Raw mode as runc sets it (cfmakeraw, output processing kept so that "\n" still moves to a new line).
    fn set_raw(&mut self) -> Result<()> {
        let before = termios::tcgetattr(&self.fd).context("tcgetattr the terminal")?;
        let mut raw = before.clone();
        termios::cfmakeraw(&mut raw);
        raw.output_flags |= OutputFlags::OPOST;
        self.saved = Some(before);
        termios::tcsetattr(&self.fd, SetArg::TCSANOW, &raw).map_err(|e| {
            anyhow!(
                "failed to set the terminal from the stdin: {}",
                lower(e.desc())
            )
        })
    }
}

impl Drop for HostConsole {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, t);
        }
    }
}

/// Go's (and so runc's) spelling of an errno: lower case.
fn lower(desc: &str) -> String {
    desc.to_lowercase()
}

/// A pty master berth relays to its host console.
pub struct Relay {
    master: OwnedFd,
    host: HostConsole,
}

impl Relay {
    /// Takes the master as it arrives from the container: no "\r" added to its output (berth's own terminal adds
    /// it, as under runc), non-blocking for the loop; then puts the host console in raw mode.
    pub fn new(master: OwnedFd, mut host: HostConsole) -> Result<Relay> {
        let mut t = termios::tcgetattr(&master).context("tcgetattr the pty master")?;
        t.output_flags.remove(OutputFlags::ONLCR);
        termios::tcsetattr(&master, SetArg::TCSANOW, &t).context("clear ONLCR on the pty")?;
        let flags = fcntl(master.as_raw_fd(), FcntlArg::F_GETFL).context("fcntl(F_GETFL)")?;
        fcntl(
            master.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
        )
        .context("make the pty master non-blocking")?;
        host.set_raw()?;
        let relay = Relay { master, host };
        // Already now, not only once the process runs as runc does: a program that reads its size first thing
        // would otherwise race berth (runc's `stty size` under `run` sometimes sees 0 0).
        relay.resize();
        Ok(relay)
    }

    /// Copies the host console's window size to the pty; errors are ignored as runc does (the terminal may be
    /// going away).
    fn resize(&self) {
        if let Ok(ws) = crate::sys::window_size(self.host.fd.as_fd()) {
            let _ = crate::sys::set_winsize(self.master.as_fd(), &ws);
        }
    }
}

fn reap(pid: Pid) -> Result<Option<i32>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)).context("waitpid")? {
        WaitStatus::Exited(_, code) => Ok(Some(code)),
        WaitStatus::Signaled(_, sig, _) => Ok(Some(128 + sig as i32)),
        _ => Ok(None),
    }
}
