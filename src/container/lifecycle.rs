//! start, kill, delete and the live status, each under the container's lock where it changes state.

use std::fs::File;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::Flock;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use super::state::{self, State, StateDir, Status};
use crate::cgroups::{self, Freezer};
use crate::process::hooks::{Hooks, Phase};
use crate::process::sync::{self, Message};

/// The live status of a container.
pub fn status_of(dir: &StateDir, st: &State) -> Status {
    st.status(dir, || {
        !st.cgroup_paths.is_empty() && cgroups::from_paths(&st.cgroup_paths).is_frozen()
    })
}

/// The hooks of the config that create saved (read only when it has any: start and delete stay cheap).
fn saved_hooks(dir: &StateDir, st: &State) -> Hooks {
    if !st.has_hooks {
        return Hooks::default();
    }
    std::fs::read(dir.file(state::CONFIG_FILE))
        .ok()
        .and_then(|raw| serde_json::from_slice::<oci_spec::runtime::Spec>(&raw).ok())
        .map(|mut spec| Hooks::from_oci(spec.hooks_mut().take()))
        .unwrap_or_default()
}

pub fn start(dir: &StateDir) -> Result<()> {
    let lock = dir.lock()?;
    let mut st = dir.load()?;
    match status_of(dir, &st) {
        Status::Created => {}
        other => bail!("cannot start a container that is {other}"),
    }
    let hooks = saved_hooks(dir, &st);
    let report = signal_start(dir, &lock, &hooks)?;
    let _ = std::fs::remove_file(dir.file(state::START_SOCKET));
    if let Some(report) = report {
        st.status = Status::Stopped;
        dir.save(&st)?;
        bail!("{report}");
    }
    st.status = Status::Running;
    dir.save(&st)?;
    drop(lock);
    for e in hooks.run_phase_to_end(Phase::Poststart, &st.oci(Status::Running)) {
        crate::logging::warn(&format!("container {}: {e}", st.id));
    }
    Ok(())
}

/// The start exchange with the init (see `process::sync::Message`): connect to its socket, send `Start`, wait for
/// EOF (its execve closed the connection) or its error report, which is returned.
fn signal_start(dir: &StateDir, lock: &Flock<File>, hooks: &Hooks) -> Result<Option<String>> {
    let path = format!(
        "/proc/self/fd/{}/{}",
        state::lock_fd(lock),
        state::START_SOCKET
    );
    let conn = match sync::connect_to(&path) {
        Ok(c) => c,
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            // The init no longer listens: it already exec'd (a start that died before recording it) or died.
            let _ = std::fs::remove_file(dir.file(state::START_SOCKET));
            bail!("cannot start the container: its init is no longer waiting for start");
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("connect {}", dir.file(state::START_SOCKET).display()))
        }
    };
    conn.send(&Message::Start)
        .map_err(io_error)
        .context("signal the init to start")?;
    let hook_time: u64 = hooks
        .start_container
        .iter()
        .map(|h| h.timeout.map_or(0, |t| t.as_secs()))
        .sum();
    let limit = Duration::from_secs(60 + hook_time);
    match conn.recv(Some(limit)) {
        Ok(Message::Error(report)) => Ok(Some(report)),
        Ok(other) => Ok(Some(format!("unexpected message from the init: {other:?}"))),
        Err(sync::Error::Timeout(_)) => Err(anyhow!("timed out after {limit:?}"))
            .context("waiting for the container program to start"),
        Err(sync::Error::Decode(e)) => Ok(Some(e)),
        // EOF, or the connection reset by the init's exit: its program was exec'd (an init that died instead shows
        // as stopped from now on).
        Err(sync::Error::Closed | sync::Error::Sys(_)) => Ok(None),
    }
}

/// A socket error in the words of `std::io` (as berth's messages had them before the typed start).
fn io_error(e: sync::Error) -> anyhow::Error {
    match e {
        sync::Error::Sys(errno) => std::io::Error::from(errno).into(),
        other => other.into(),
    }
}

/// runc's words for a container that is not running: containerd's shim matches them to learn that a kill found
/// the container already gone (anything else it reports as an unknown error and retries).
const NOT_RUNNING: &str = "container not running";

/// Sends `signal` to the init, or with `all` to every process in the container's cgroup. As runc, `all` also
/// sweeps the cgroup of a stopped container: processes of a container without its own pid namespace outlive the
/// init there. For the same reason SIGKILL to such a container goes to its whole cgroup (runc ≥ 1.2): in its own
/// pid namespace the kernel takes the rest with the init, without one nothing would.
pub fn kill(dir: &StateDir, signal: i32, all: bool) -> Result<()> {
    let st = dir.load()?;
    let status = status_of(dir, &st);
    let sweep = signal == libc::SIGKILL && !st.own_pid_ns && !st.cgroup_paths.is_empty();
    if sweep && !all {
        if status == Status::Stopped && st.cgroup_paths.values().all(|p| !p.exists()) {
            bail!(NOT_RUNNING);
        }
        return signal_all(cgroups::from_paths(&st.cgroup_paths).as_ref(), signal);
    }
    if all {
        if st.cgroup_paths.is_empty() {
            // No cgroup to sweep (rootless, where none was writable): the one process known is the init; in its own
            // pid namespace a SIGKILL to it takes every other process with it.
            return match status {
                Status::Stopped => Ok(()),
                _ => signal_init(&st, signal),
            };
        }
        let cg = cgroups::from_paths(&st.cgroup_paths);
        return match signal_all(cg.as_ref(), signal) {
            // The cgroup of a stopped container may already be gone (runc: nothing is left to signal).
            Err(_)
                if status == Status::Stopped && st.cgroup_paths.values().all(|p| !p.exists()) =>
            {
                Ok(())
            }
            r => r,
        };
    }
    if status == Status::Stopped {
        bail!(NOT_RUNNING);
    }
    signal_init(&st, signal)
}

/// Signals the init through a pidfd opened and checked against the recorded start time: never a reused pid.
fn signal_init(st: &State, signal: i32) -> Result<()> {
    let pid = Pid::from_raw(st.pid);
    let pidfd = match crate::sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => bail!(NOT_RUNNING),
        Err(e) => return Err(e).with_context(|| format!("pidfd_open {pid}")),
    };
    if !st.init_alive() {
        bail!(NOT_RUNNING);
    }
    crate::sys::pidfd_send_signal(pidfd.as_fd(), signal)
        .with_context(|| format!("send signal {signal} to the init (pid {pid})"))
}

/// Signals every process of the cgroup; a paused container is thawed afterwards so the signal is acted on.
fn signal_all(cg: &dyn cgroups::Manager, signal: i32) -> Result<()> {
    let was_frozen = cg.is_frozen();
    if !was_frozen {
        let _ = cg.freeze(Freezer::Frozen);
    }
    for p in cg.pids()? {
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::try_from(signal).ok());
    }
    if !was_frozen || signal == libc::SIGKILL {
        let _ = cg.freeze(Freezer::Thawed);
    }
    Ok(())
}

/// Removes a container. A running one needs `force` (then everything in it is killed); a created one is killed.
pub fn delete(dir: &StateDir, force: bool) -> Result<()> {
    let _lock = match dir.lock() {
        Ok(l) => l,
        Err(state::Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = match dir.load() {
        Ok(st) => st,
        // Another delete won the race, or a create died before recording anything: nothing else can exist.
        Err(state::Error::NotFound(_)) if !dir.file(state::STATE_FILE).exists() => {
            dir.remove()?;
            if force || !dir.exists() {
                return Ok(());
            }
            bail!("container {} does not exist", dir.id);
        }
        Err(e) => return Err(e.into()),
    };
    let status = status_of(dir, &st);
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        other => bail!("cannot delete a container that is not stopped: {other}"),
    }
    // Read before the state dir (and the saved config with it) is gone.
    let hooks = saved_hooks(dir, &st);
    destroy(&st)?;
    dir.remove()?;
    for e in hooks.run_phase_to_end(Phase::Poststop, &st.oci(Status::Stopped)) {
        crate::logging::warn(&format!("container {}: {e}", st.id));
    }
    Ok(())
}

/// Kills whatever is left of the container and removes its cgroup.
fn destroy(st: &State) -> Result<()> {
    if st.init_alive() {
        let pid = Pid::from_raw(st.pid);
        if let Ok(pidfd) = crate::sys::pidfd_open(pid) {
            if st.init_alive() {
                let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                wait_exit(&pidfd, Duration::from_secs(10));
            }
        }
    }
    if st.host_mounts {
        crate::rootfs::unmount_all_under(&st.rootfs)
            .with_context(|| format!("unmount what container {} mounted", st.id))?;
    }
    if st.cgroup_paths.is_empty() {
        return Ok(());
    }
    let cg = st.cgroup_manager();
    if cg.is_frozen() {
        let _ = cg.freeze(Freezer::Thawed);
    }
    for _ in 0..100 {
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() {
            break;
        }
        signal_all(cg.as_ref(), libc::SIGKILL)?;
        std::thread::sleep(Duration::from_millis(5));
    }
    cg.destroy()
        .with_context(|| format!("remove the cgroup of container {}", st.id))
}

/// Waits (bounded) until the process behind `pidfd` has exited.
fn wait_exit(pidfd: &std::os::fd::OwnedFd, limit: Duration) {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(limit.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut fds, ms);
}
