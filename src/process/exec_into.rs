//! `exec`, child side. Born (non-dumpable) in the container's pid namespace and cgroup, it waits for the parent,
//! joins the other namespaces of the init in one setns on its pidfd (the kernel joins the user namespace first and
//! the mount namespace last), sets up the process as the init does (terminal, rlimits, capabilities, ids,
//! no_new_privs, seccomp: with a notify rule, its own notify fd goes to the listener) and execs. Its channel is
//! close-on-exec: the parent sees EOF when execve succeeded, or reads the error report.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::Process;

use super::sync::{Channel, Message};

pub struct ExecArgs<'a> {
    pub process: &'a Process,
    /// The container's init.
    pub pidfd: OwnedFd,
    /// Namespaces still to join (pid and time were joined by the parent before the clone).
    pub join: CloneFlags,
    pub channel: Channel,
    pub console_socket: Option<UnixStream>,
    /// Foreground exec with a terminal and no console socket: the inherited stdin becomes the terminal.
    pub inherit_terminal: bool,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a super::seccomp::Filter>,
    /// The connection to linux.seccomp.listenerPath that the parent opened on the host (SCMP_ACT_NOTIFY only).
    pub seccomp_listener: Option<UnixStream>,
    /// The container's `linux`: its personality and memory policy apply to `exec` too, as in runc.
    pub linux: Option<&'a oci_spec::runtime::Linux>,
}

/// Runs the child; never returns.
pub fn run(args: ExecArgs) -> ! {
    let code = match setup_and_exec(&args) {
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

fn setup_and_exec(args: &ExecArgs) -> Result<i32> {
    super::affinity::log_start();
    crate::container::foreground::reset_signals_for_container().context("reset signal mask")?;
    let (state, host_pid) = match args.channel.recv(None).context("waiting for the parent")? {
        Message::GoExec { state, pid } => (state, pid),
        other => anyhow::bail!("unexpected message from the parent: {other:?}"),
    };
    let p = args.process;
    if !args.join.is_empty() {
        nix::sched::setns(args.pidfd.as_fd(), args.join)
            .with_context(|| format!("setns into the container's namespaces {:?}", args.join))?;
    }
    if args.join.contains(CloneFlags::CLONE_NEWUSER) {
        // Become root of the container's user namespace (if mapped) for the setup that follows.
        let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
        let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
    }
    if let Some(socket) = &args.console_socket {
        let size = p.console_size().as_ref().map(|b| (b.height(), b.width()));
        super::tty::setup_console(socket, size, false, Some((p.user().uid(), p.user().gid())))?;
    } else if args.inherit_terminal {
        crate::sys::take_controlling_tty(0).context("make stdin the controlling terminal")?;
    }
    // While still root and before the uid switch, as the init does.
    super::lsm::apply_on_exec(
        p.apparmor_profile().as_deref(),
        p.selinux_label().as_deref(),
    )?;
    if let Some(rl) = p.rlimits() {
        super::rlimits::apply(rl)?;
    }
    super::attrs::apply_exec(p, args.linux)?;
    let cwd = p.cwd();
    nix::unistd::chdir(cwd).with_context(|| format!("chdir to cwd {}", cwd.display()))?;

    let caps = super::caps::CapSets::from_spec(p.capabilities().as_ref())?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let stub = super::exec_stub::Stub::for_process(p, args.seccomp);
    if !nnp {
        if let Some(f) = args.seccomp {
            f.load_for(args.seccomp_listener.as_ref(), &state, host_pid)?;
        }
    }
    caps.drop_bounding()?;
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    super::identity::switch(p.user(), setgroups_allowed)?;
    caps.apply_after_setuid()?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
        if let Some(f) = args.seccomp {
            f.load_for(args.seccomp_listener.as_ref(), &state, host_pid)?;
        }
    }
    // As runc: the program is looked up (and HOME read from /etc/passwd) as the user, with its final
    // capabilities, so a lookup can reach nothing the program itself could not.
    let env = p.env().clone().unwrap_or_default();
    let argv = p.args().clone().unwrap_or_default();
    let path = super::exec::find_program(&argv[0], &env, cwd)?;
    let program = super::exec::prepare(path, &argv, &env, p.user().uid())?;
    crate::sys::set_umask(p.user().umask().unwrap_or(0o022));
    let first = 3 + args.preserve_fds as i32;
    crate::sys::cloexec_fds_from(first).context("close_range(CLOEXEC)")?;
    for fd in 3..first {
        crate::sys::clear_cloexec(fd).with_context(|| format!("keep preserved fd {fd}"))?;
    }
    let errno = program.exec(stub.as_ref(), args.channel.raw_fd());
    let _ = args.channel.send(&Message::Error(format!(
        "exec {}: {}",
        program.path.to_string_lossy(),
        errno.desc()
    )));
    Ok(127)
}
