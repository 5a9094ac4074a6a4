//! `exec`, parent side: a new process in a running container. Top to bottom: check the container ([`Target`]) →
//! take the process, finished (`commands::exec` builds it from the flags) → clone3 an intermediate straight into the
//! container's cgroup, or the sub-cgroup `--cgroup` names (`cgroups::sub`) (v2; v1 writes its pid right after) →
//! the intermediate joins all the init's namespaces and forks the process into the pid namespace
//! (process::exec_into) → the process runs the shared setup and execs → wait (foreground) or return (detached).
//!
//! CVE-2019-5736 and the host's mounts: berth runs from a read-only view of its binary (commands::sealed), so no
//! process of berth, here or in the container, has a writable handle on the host's binary; the process that
//! becomes visible in the container's pid namespace is forked only once it is inside the container's mount
//! namespace and root, and it is non-dumpable (we make ourselves non-dumpable before the clone) until its execve;
//! the last execve goes through the sealed stub (process::exec_stub). tests/escapes.rs performs the attacks from a
//! container holding CAP_SYS_PTRACE.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::foreground::{Forwarder, HostConsole, Relay};
use super::pidfd_socket::{Kind, PidfdSocket};
use super::state::{self, State, StateDir, Status};
use crate::cgroups;
use crate::config::{Config, Process};
use crate::process::exec_into::{self, ExecArgs};
use crate::process::sync::{self, Message};
use crate::sys::{clone3_fork, Forked};

/// How long the parent waits for the child to get from the clone to its execve.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How `berth exec` runs the process (the process itself is built by the command from the flags).
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: receives a pidfd of the process once it has exec'd.
    pub pidfd_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Exec in a paused container too (the process sets up and runs once it is resumed).
    pub ignore_paused: bool,
    /// `--cgroup`: the sub-cgroup(s) of the container's cgroup the process joins instead of the container's own.
    pub sub_cgroups: Vec<String>,
}

/// A container that may take an `exec`: running, created, or paused with --ignore-paused; with the config `create`
/// saved, translated again as `create` translated it (a relative bind source stays relative: exec uses no mount).
pub struct Target {
    st: State,
    config: Config,
    /// The container's `process` as decoded: what `exec`'s flags apply to when no process file is given.
    process: oci_spec::runtime::Process,
}

impl Target {
    pub fn open(dir: &StateDir, ignore_paused: bool) -> Result<Target> {
        let st = dir.load()?;
        match super::status_of(dir, &st) {
            Status::Running | Status::Created => {}
            Status::Paused if ignore_paused => {}
            Status::Paused => {
                bail!("cannot exec in a paused container (use --ignore-paused to override)")
            }
            other => bail!("cannot exec in a container that is {other}"),
        }
        let path = dir.file(state::CONFIG_FILE);
        let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        let spec = crate::config::parse(&path, &raw)?;
        let process = spec.process().clone();
        let config = Config::from_spec(&path, spec)?;
        let process = process.context("saved config.json: process is missing")?;
        Ok(Target {
            st,
            config,
            process,
        })
    }

    /// The container's own process, as config.json gives it (exec's flags are applied to it, then it is
    /// translated).
    pub fn config_process(&self) -> &oci_spec::runtime::Process {
        &self.process
    }
}

/// Namespaces of the init that differ from ours, as setns flags (joining our own user namespace is an error).
fn namespaces_to_join(pid: Pid) -> Result<CloneFlags> {
    let kinds: &[(&str, CloneFlags)] = &[
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("net", CloneFlags::CLONE_NEWNET),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ];
    let mut flags = CloneFlags::empty();
    for (name, flag) in kinds {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let Ok(their) = std::fs::metadata(&theirs) else {
            continue;
        };
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .with_context(|| format!("stat /proc/self/ns/{name}"))?;
        if (their.dev(), their.ino()) != (ours.dev(), ours.ino()) {
            flags |= *flag;
        }
    }
    Ok(flags)
}

/// Runs `process` in the container. Foreground: returns its exit code (128+N on signal N). Detached: 0 once
/// it has exec'd.
pub fn exec(target: &Target, mut process: Process, opts: &ExecOptions) -> Result<i32> {
    let Target { st, config, .. } = target;
    let sub_request = cgroups::sub::parse(&opts.sub_cgroups)?;
    // As create checks the init's: a profile or label the host cannot apply is a clear error before any clone.
    crate::lsm::check(
        process.apparmor_profile.as_deref(),
        process.selinux_label.as_deref(),
        None,
    )?;
    let terminal = process.terminal;
    super::create::check_terminal(terminal, opts.detach, opts.console_socket.is_some())?;
    let host_console = (terminal && !opts.detach)
        .then(|| HostConsole::find(3 + opts.preserve_fds as i32))
        .transpose()?;
    // The child sizes the pty as berth's terminal before its program can ask (the relay alone would race it).
    if let Some((rows, cols)) = host_console.as_ref().and_then(|h| h.size()) {
        process.console_size = Some((rows.into(), cols.into()));
    }
    let console_socket = match (&opts.console_socket, terminal) {
        (Some(path), true) => Some(crate::process::tty::connect(path)?),
        _ => None,
    };
    let pidfd_socket = opts
        .pidfd_socket
        .as_deref()
        .map(PidfdSocket::connect)
        .transpose()?;
    let seccomp = config.linux.seccomp.as_ref();
    // On the host, before the clone (the child resolves paths in the container's mounts): the child inherits the
    // connection and sends its notify fd over it.
    let seccomp_listener = match &seccomp {
        Some(f) => f.connect_listener()?,
        None => None,
    };

    let init = Pid::from_raw(st.pid);
    let pidfd = crate::sys::pidfd_open(init).with_context(|| format!("pidfd_open {init}"))?;
    let flags = namespaces_to_join(init)?;
    // The pidfd now pins the process: if it is still the recorded init, the namespaces read above are its own.
    if !st.init_alive() {
        bail!("cannot exec: the container's init (pid {init}) has exited");
    }
    let cgroup = cgroups::from_paths(&st.cgroup_paths);
    // --cgroup: the sub-cgroups, opened beneath the container's cgroup before anything exists.
    let sub = (!sub_request.is_empty())
        .then(|| cgroups::sub::Target::open(&st.cgroup_paths, &sub_request))
        .transpose()?;
    let cgroup_fd = match &sub {
        Some(sub) => sub.clone_fd()?,
        None => cgroup.clone_fd()?,
    };

    let forwarder = (!opts.detach).then(Forwarder::block).transpose()?;
    // Our children are forked from us: non-dumpable here means non-dumpable from their birth until the execve.
    crate::sys::set_not_dumpable().context("prctl(PR_SET_DUMPABLE, 0)")?;
    let (parent_chan, child_chan) = sync::pair()?;
    let initial_affinity = crate::process::affinity::Initial::enter(&process)?;
    let forked = clone3_fork(0, cgroup_fd.as_ref().map(|f| f.as_fd()));
    if let Ok(Forked::Child) = forked {
        drop(parent_chan);
        exec_into::run(ExecArgs {
            process: &process,
            pidfd: Some(pidfd),
            join: flags,
            channel: child_chan,
            console_socket,
            terminal_to_parent: host_console.is_some(),
            preserve_fds: opts.preserve_fds,
            seccomp,
            seccomp_listener,
            close_fds: cgroup_fd
                .iter()
                .map(|f| f.as_raw_fd())
                .chain(pidfd_socket.as_ref().map(|s| s.raw_fd()))
                .chain(sub.iter().flat_map(|s| s.raw_fds()))
                .collect(),
            linux: Some(&config.linux),
        });
    }
    // Only here, on the parent's side: the child keeps the initial affinity.
    drop(initial_affinity);
    let intermediate = match forked {
        Ok(Forked::Parent(pid)) => pid,
        Ok(Forked::Child) => unreachable!("the child never returns"),
        Err(e) => bail!("clone3 into the container's cgroup: {e}"),
    };
    drop(child_chan);
    drop(console_socket);
    drop(seccomp_listener);
    let mut relay = None;
    let mut exec_pid = None;
    // A paused container's processes (the intermediate is born in its cgroup) set up only once it is resumed,
    // whenever that is: with --ignore-paused nothing times out.
    let setup_timeout = (!opts.ignore_paused).then_some(SETUP_TIMEOUT);
    let result = (|| -> Result<Pid> {
        if cgroup_fd.is_none() && !st.cgroup_paths.is_empty() {
            match &sub {
                Some(sub) => sub.add_task(intermediate)?,
                None => cgroup.add_task(intermediate)?,
            }
        }
        let died = |e: sync::Error| anyhow!("the exec process died during setup ({e})");
        parent_chan
            .send(&Message::Go(st.oci(Status::Running)))
            .map_err(died)?;
        let pid = match parent_chan.recv(setup_timeout) {
            Ok(Message::Forked(pid)) => Pid::from_raw(pid),
            Ok(Message::Error(e)) => bail!("{e}"),
            Ok(other) => bail!("unexpected message from the exec process: {other:?}"),
            Err(e) => return Err(died(e)),
        };
        exec_pid = Some(pid);
        let _ = waitpid(intermediate, None);
        parent_chan
            .send(&Message::GoExec {
                state: st.oci(Status::Running),
                pid: pid.as_raw(),
            })
            .map_err(died)?;
        if let Some(host) = host_console {
            relay = Some(Relay::new(receive_master(&parent_chan, pid)?, host)?);
        }
        // EOF: the channel was closed by a successful execve. A message: a warning, or the child's error report.
        loop {
            match parent_chan.recv(setup_timeout) {
                Err(sync::Error::Closed) => return Ok(pid),
                Ok(Message::Warning(w)) => crate::logging::warn(&w),
                Ok(Message::Error(e)) => return Err(anyhow!("{e}")),
                Ok(other) => {
                    return Err(anyhow!(
                        "unexpected message from the exec process: {other:?}"
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
    })();
    let pid = match result {
        Ok(pid) => pid,
        Err(e) => {
            // Once the exec'd process is known, the intermediate has been reaped: its pid is no longer ours.
            let pid = exec_pid.unwrap_or(intermediate);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(e);
        }
    };
    // Exec'd and not reaped (berth waits for it only below): its pid cannot have been reused. A failure to hand
    // it over (pidfd socket, pid file) ends it: the caller would not know of it (runc too).
    let handed_over = pidfd_socket
        .as_ref()
        .map_or(Ok(()), |socket| {
            socket.send(pid, Kind::Exec).map_err(anyhow::Error::from)
        })
        .and_then(|()| match &opts.pid_file {
            Some(pf) => super::create::write_pid_file(pf, pid),
            None => Ok(()),
        });
    if let Err(e) = handed_over {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    match (forwarder, relay) {
        (Some(f), Some(relay)) => f.relay(pid, relay),
        (Some(f), None) => f.wait(pid),
        (None, _) => Ok(0),
    }
}

/// The pty master the child sends before it goes on to exec (or its error report).
fn receive_master(chan: &sync::Channel, pid: Pid) -> Result<OwnedFd> {
    match chan.recv_fd(Some(SETUP_TIMEOUT)) {
        Ok((Message::Console, Some(fd))) => Ok(fd),
        Ok((Message::Error(e), _)) => Err(anyhow!("{e}")),
        Ok((other, _)) => Err(anyhow!(
            "unexpected message from the exec process: {other:?}"
        )),
        Err(sync::Error::Closed) => Err(anyhow!("the exec process (pid {pid}) died during setup")),
        Err(e) => Err(e.into()),
    }
}

/// The state dir of a container that must exist.
pub fn existing(root: &Path, id: &str) -> Result<StateDir> {
    crate::config::validate_id(id)?;
    let dir = StateDir::new(root, id);
    if !dir.file(state::STATE_FILE).exists() {
        bail!("container {id} does not exist");
    }
    Ok(dir)
}
