//! `run` in the foreground: berth waits for the init, forwarding the signals it receives, and exits with the
//! container's status (128+N when killed by signal N).

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
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
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                continue;
            }
            if let Ok(sig) = Signal::try_from(signo) {
                let _ = nix::sys::signal::kill(pid, sig);
            }
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

/// The init's first act: an empty signal mask and default SIGPIPE (Rust ignores it; that would leak into the
/// container program through execve).
pub fn reset_signals_for_container() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    crate::sys::default_sigpipe()
}
