//! `exec`, child side, in two processes so that nothing the container can see ever stands in the host's mounts:
//!
//! - the **intermediate**, cloned by `berth exec` into the container's cgroup but still in the host's pid
//!   namespace (invisible to the container unless it shares the host's), drops the descriptors it must not pass
//!   on (the cgroup directory used for CLONE_INTO_CGROUP), waits for the parent, joins every namespace of the init
//!   in one setns on its pidfd (the kernel joins the user namespace first; mount namespace: root and cwd become the
//!   container's; pid and time: for children), and forks the exec'd process with CLONE_PARENT (so it is berth's
//!   child), tells the parent its host pid and exits;
//! - the **process**, born in the container's pid namespace already inside its mount namespace and root, from a
//!   read-only view of berth's binary (commands::sealed), non-dumpable, holding no host directory: it runs the
//!   shared setup (process::setup: fd sweep before the cwd, the cwd resolved inside the root, LSM, rlimits, stub,
//!   credentials, program, seccomp) and execs. Its channel is close-on-exec: the parent sees EOF when execve
//!   succeeded, or reads the error report.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use super::setup::Setup;
use super::sync::{Channel, Message};
use crate::config::Process;
use anyhow::{Context, Result};
use nix::sched::CloneFlags;

pub struct ExecArgs<'a> {
    pub process: &'a Process,
    /// The container's init; closed once its namespaces are joined.
    pub pidfd: Option<OwnedFd>,
    /// Namespaces of the init that differ from berth's.
    pub join: CloneFlags,
    pub channel: Channel,
    pub console_socket: Option<UnixStream>,
    /// Foreground `exec -t`: the pty master goes to berth over the channel, and berth relays it.
    pub terminal_to_parent: bool,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a super::seccomp::Filter>,
    /// The connection to linux.seccomp.listenerPath that the parent opened on the host (SCMP_ACT_NOTIFY only).
    pub seccomp_listener: Option<UnixStream>,
    /// Descriptors of the parent that nothing in the container may inherit (the cgroup directory).
    pub close_fds: Vec<RawFd>,
    /// The container's `linux`: its personality and memory policy apply to `exec` too, as in runc.
    pub linux: Option<&'a crate::config::Linux>,
}

/// Runs the intermediate (and, in the fork, the process); never returns.
pub fn run(mut args: ExecArgs) -> ! {
    let code = match join_and_fork(&mut args) {
        Ok(()) => 0,
        Err(e) => {
            let _ = args
                .channel
                .send(&Message::Error(crate::logging::chain(&e)));
            1
        }
    };
    std::process::exit(code)
}

/// The intermediate: join, fork the process, report its pid.
fn join_and_fork(args: &mut ExecArgs) -> Result<()> {
    // Born with execCPUAffinity.initial (berth held it around the clone), before the cgroup can change it.
    super::affinity::log_start();
    for fd in &args.close_fds {
        let _ = nix::unistd::close(*fd);
    }
    match args.channel.recv(None).context("waiting for the parent")? {
        Message::Go(_) => {}
        other => anyhow::bail!("unexpected message from the parent: {other:?}"),
    }
    let pidfd = args.pidfd.take().context("no pidfd of the init")?;
    if !args.join.is_empty() {
        nix::sched::setns(pidfd.as_fd(), args.join)
            .with_context(|| format!("setns into the container's namespaces {:?}", args.join))?;
    }
    drop(pidfd);
    if args.join.contains(CloneFlags::CLONE_NEWUSER) {
        // Root of the container's user namespace (if mapped) for the setup that follows.
        super::setup::become_userns_root()?;
    }
    match crate::sys::clone3_fork(libc::CLONE_PARENT as u64, None)
        .context("fork the exec'd process into the container's pid namespace")?
    {
        crate::sys::Forked::Child => process(args),
        crate::sys::Forked::Parent(pid) => {
            args.channel.send(&Message::Forked(pid.as_raw()))?;
            Ok(())
        }
    }
}

/// The process in the container; never returns.
fn process(args: &ExecArgs) -> ! {
    let code = match setup_and_exec(args) {
        Ok(code) => code,
        Err(e) => {
            let _ = args
                .channel
                .send(&Message::Error(crate::logging::chain(&e)));
            1
        }
    };
    std::process::exit(code)
}

/// `terminal`: a pty of the container's devpts, its master sent to the console socket or to berth.
fn setup_terminal(args: &ExecArgs) -> Result<()> {
    use super::tty::{setup_console, MasterTo};
    let to = match &args.console_socket {
        Some(socket) => MasterTo::Socket(socket),
        None if args.terminal_to_parent => MasterTo::Parent(&args.channel),
        None => return Ok(()),
    };
    let p = args.process;
    setup_console(to, p.console_size, false, Some(p.user.uid))?;
    Ok(())
}

fn setup_and_exec(args: &ExecArgs) -> Result<i32> {
    super::setup::reset_signals_for_container().context("reset signal mask")?;
    let (state, host_pid) = match args.channel.recv(None).context("waiting for the parent")? {
        Message::GoExec { state, pid } => (state, pid),
        other => anyhow::bail!("unexpected message from the parent: {other:?}"),
    };
    let p = args.process;
    let setup = Setup {
        process: p,
        preserve_fds: args.preserve_fds,
        seccomp: args.seccomp,
        seccomp_listener: args.seccomp_listener.as_ref(),
    };
    setup.sweep_fds()?;
    setup_terminal(args)?;
    setup.enter_cwd()?;
    setup.lsm()?;
    setup.rlimits()?;
    super::attrs::apply_exec(p, args.linux)?;
    let stub = setup.stub();
    for w in setup.credentials(&state, host_pid)? {
        args.channel.send(&Message::Warning(w))?;
    }
    let program = setup.program()?;
    setup.seccomp_with_nnp(&state, host_pid)?;
    let report = super::setup::exec(&program, stub.as_ref(), args.channel.raw_fd());
    let _ = args.channel.send(&Message::Error(report));
    Ok(127)
}
