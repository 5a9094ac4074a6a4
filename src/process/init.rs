//! The init's side of `create`, as steps: [`wait_for_go`] (id maps, cgroup) → [`enter_namespaces`] →
//! [`build_rootfs`] → [`run_create_hooks`] → [`enter_rootfs`] (pivot_root) → [`prepare_process`] → [`report_ready`];
//! then [`wait_and_exec`]: wait for `start`, startContainer hooks, execve. The messages are written on [`Message`].
//!
//! It runs in the child of a fork of a single-threaded berth, so it may allocate; any error is sent to the parent
//! with its context and the child exits.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::sync::{Channel, Listener, Message};
use crate::config::Config;
use crate::namespaces::{self, Plan};
use crate::oci_state::{OciState, Status};
use crate::rootfs;

/// Everything the init needs, prepared by the parent before the clone.
pub struct InitArgs<'a> {
    pub config: &'a Config,
    pub rootfs: PathBuf,
    pub plan: &'a Plan,
    pub channel: Channel,
    /// Listening socket in the state dir; `start` connects to it.
    pub start_listener: Listener,
    pub cgroup_paths: &'a std::collections::BTreeMap<String, PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub no_new_keyring: bool,
    pub id: &'a str,
    /// process.terminal in the foreground (`run` without a console socket): the pty master goes to berth over the
    /// channel, and berth relays it to its own terminal.
    pub terminal: bool,
    /// Descriptors of the parent that must not survive into the init (the lock, the parent's channel end).
    pub close_fds: Vec<RawFd>,
    pub parent: Pid,
    pub seccomp: Option<&'a super::seccomp::Filter>,
    /// The connection to linux.seccomp.listenerPath that `create` opened on the host (SCMP_ACT_NOTIFY only).
    pub seccomp_listener: Option<std::os::unix::net::UnixStream>,
    pub hooks: &'a crate::process::hooks::Hooks,
    /// process.terminal with --console-socket: the connected socket the pty master is sent over.
    pub console_socket: Option<std::os::unix::net::UnixStream>,
    /// `create` may enter the container's mount namespace to open bind sources (not so for a rootless caller).
    pub host_binds: bool,
}

/// Runs the init; never returns.
pub fn run(mut args: InitArgs) -> ! {
    let result = setup(&mut args);
    let code = match result {
        Ok(prepared) => wait_and_exec(&args, prepared),
        Err(e) => {
            let _ = args
                .channel
                .send(&Message::Error(crate::logging::chain(&e)));
            1
        }
    };
    std::process::exit(code)
}

fn die_with_parent(parent: Pid) -> Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")?;
    // The parent may have died before the line above: then nobody would ever kill us. (In a new pid namespace
    // the parent is outside it and getppid() is 0; there a dead parent shows as EOF on the channel instead.)
    let ppid = nix::unistd::getppid();
    if ppid.as_raw() != 0 && ppid != parent {
        anyhow::bail!("berth create exited during setup");
    }
    Ok(())
}

/// What the init carries from setup to exec.
struct Prepared {
    program: super::exec::Program,
    state: OciState,
}

/// The init's side of `create` (the exchange is written on [`Message`]), step by step.
fn setup(args: &mut InitArgs) -> Result<Prepared> {
    let mut state = wait_for_go(args)?;
    let in_user_ns = enter_namespaces(args)?;
    let mounted = build_rootfs(args, in_user_ns)?;
    run_create_hooks(args, &state)?;
    enter_rootfs(args, mounted)?;
    let program = prepare_process(args, &state)?;
    report_ready(args)?;
    state.status = Status::Created;
    Ok(Prepared { program, state })
}

/// Step 1: tie our life to berth's, drop its descriptors and signal mask, and wait for `Go` (our id maps are
/// written, we are in our cgroup). Returns the state hooks receive.
fn wait_for_go(args: &InitArgs) -> Result<OciState> {
    die_with_parent(args.parent)?;
    for fd in &args.close_fds {
        let _ = nix::unistd::close(*fd);
    }
    super::setup::reset_signals_for_container().context("reset signal mask")?;
    // A created container ends on SIGTERM and its kin, as runc's init does (as pid 1 it ignores default actions).
    // Now, before seccomp, and long before create returns.
    crate::sys::exit_on_termination_signals()
        .context("sigaction for SIGTERM, SIGINT, SIGHUP, SIGQUIT")?;
    match args.channel.recv(None).context("waiting for the parent")? {
        Message::Go(state) => Ok(state),
        other => anyhow::bail!("unexpected message from the parent: {other:?}"),
    }
}

/// Step 2: join (or, staged, create) the namespaces, become root of the user namespace, turn non-dumpable, join a
/// new session keyring, and create the cgroup namespace last (so that it is rooted at our cgroup). Returns
/// whether we are in a user namespace.
fn enter_namespaces(args: &InitArgs) -> Result<bool> {
    let ns = &args.config.namespaces;
    if ns.needs_staged_setup() {
        enter_namespaces_staged(args)?;
    } else {
        namespaces::enter_all(&args.plan.joins)?;
    }
    let in_user_ns = ns.user;
    if in_user_ns {
        // Become root of the user namespace (new and mapped by the parent, or joined) for the setup that follows:
        // files made on filesystems mounted inside it need an id that is mapped there.
        super::setup::become_userns_root()?;
    }
    // No ptrace or /proc/<pid>/exe handle on berth for anything in the container while it sets up (execve resets
    // this). In a user namespace the uid change above already did this on most hosts (fs.suid_dumpable=0); say it
    // explicitly so that no host setting and no 0→0 mapping leaves a joined user namespace a window. (Our own
    // /proc files then belong to the host's root: oom_score_adj is written by `create` from the host.)
    crate::sys::set_not_dumpable().context("prctl(PR_SET_DUMPABLE, 0)")?;
    if !args.no_new_keyring {
        let name = std::ffi::CString::new(format!("_ses.{}", args.id)).expect("ids have no NUL");
        // ENOSYS/EACCES: keyrings unavailable (e.g. blocked by a seccomp profile around berth); runc ignores too.
        if let Err(e) = crate::sys::join_session_keyring(&name) {
            if e != nix::errno::Errno::ENOSYS && e != nix::errno::Errno::EACCES {
                return Err(e).context("keyctl(JOIN_SESSION_KEYRING)");
            }
        }
    }
    if ns.new_cgroup {
        namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP, "cgroup namespace")?;
    }
    Ok(in_user_ns)
}

/// Step 3: the mounts under the rootfs, still at its host path (`rootfs::prepare`); binds the user namespace may not
/// make come from berth (`IdmapRequest`).
fn build_rootfs(args: &InitArgs, in_user_ns: bool) -> Result<rootfs::Mounted> {
    let host_tree = |index: usize| ask_host_tree(&args.channel, index);
    let ctx = rootfs::Context {
        config: args.config,
        rootfs: &args.rootfs,
        cgroup_paths: args.cgroup_paths,
        in_user_ns,
        host_binds: args.host_binds,
        host_tree: &host_tree,
    };
    rootfs::prepare(&ctx).context("rootfs")
}

/// Step 4: prestart and createRuntime hooks, run by berth in the runtime's namespaces (`RunHooks`), then
/// createContainer hooks here, in the container's namespaces before pivot_root.
fn run_create_hooks(args: &InitArgs, state: &OciState) -> Result<()> {
    if !args.hooks.prestart.is_empty() || !args.hooks.create_runtime.is_empty() {
        args.channel.send(&Message::RunHooks)?;
        match args.channel.recv(None)? {
            Message::HooksDone => {}
            other => anyhow::bail!("unexpected message from the parent: {other:?}"),
        }
    }
    args.hooks
        .create_container(state, &args.config.process, &args.rootfs)?;
    Ok(())
}

/// Step 5: the rootfs becomes `/` (pivot_root), the terminal is made on the container's devpts, the cwd exists, the
/// finishing mounts are made (masked and read-only paths, read-only root) and the hostname set.
fn enter_rootfs(args: &InitArgs, mounted: rootfs::Mounted) -> Result<()> {
    let config = args.config;
    let process = &config.process;
    rootfs::enter_root(config, &args.rootfs, args.no_pivot)?;
    setup_terminal(args, process)?;
    // The cwd is made (when missing) before the root may turn read-only, as runc does.
    make_cwd(&process.cwd)?;
    rootfs::finish(config, mounted)?;
    if let Some(h) = config.hostname.as_deref() {
        nix::unistd::sethostname(h).with_context(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = config.domainname.as_deref() {
        crate::sys::setdomainname(d).with_context(|| format!("setdomainname {d:?}"))?;
    }
    Ok(())
}

/// Step 6: become the container's process, with the steps `exec` shares (`process::setup`) in their order, up to
/// the seccomp filter; the program is looked up but not yet exec'd.
fn prepare_process(args: &mut InitArgs, state: &OciState) -> Result<super::exec::Program> {
    drop(args.console_socket.take());
    let keep = [
        Some(args.channel.raw_fd()),
        Some(args.start_listener.raw_fd()),
        args.seccomp_listener.as_ref().map(|s| s.as_raw_fd()),
    ];
    let setup = process_setup(args);
    setup.sweep_fds()?;
    setup.close_unkept(&keep.into_iter().flatten().collect::<Vec<_>>())?;
    setup.enter_cwd()?;
    setup.lsm()?;
    setup.rlimits()?;
    super::attrs::apply_init(args.config)?;
    for w in setup.credentials(state, state.pid)? {
        args.channel.send(&Message::Warning(w))?;
    }
    // Changing credentials cleared the parent-death signal: set it again until create is done.
    die_with_parent(args.parent)?;
    let program = setup.program()?;
    // With no_new_privs the filter goes on as late as create allows, but within create, as runc does, so that a
    // notify listener has its fd before `start` in both cases. (What then runs under it: the sync messages, the
    // wait for start, startContainer hooks, the stub and the exec; without no_new_privs all of these run under
    // the filter too.)
    setup.seccomp_with_nnp(state, state.pid)?;
    Ok(program)
}

/// Step 7: `Ready`; once berth recorded `created` (`Detach`), stop dying with it, and confirm (`Detached`).
fn report_ready(args: &InitArgs) -> Result<()> {
    args.channel.send(&Message::Ready)?;
    match args.channel.recv(None)? {
        Message::Detach => {}
        other => anyhow::bail!("unexpected message from the parent: {other:?}"),
    }
    nix::sys::prctl::set_pdeathsig(None).context("prctl(PR_SET_PDEATHSIG, 0)")?;
    args.channel.send(&Message::Detached)?;
    Ok(())
}

/// process.terminal: a pty of the container's own devpts, its master sent to the console socket or to berth.
fn setup_terminal(args: &InitArgs, process: &crate::config::Process) -> Result<()> {
    use super::tty::{setup_console, MasterTo};
    let to = match &args.console_socket {
        Some(socket) => MasterTo::Socket(socket),
        None if args.terminal => MasterTo::Parent(&args.channel),
        None => return Ok(()),
    };
    setup_console(to, process.console_size, true, Some(process.user.uid))?;
    Ok(())
}

/// The staged path, for what one clone cannot express: join (user namespace first), then create the user namespace
/// and have the parent map it, then the other namespaces, so that they are owned by the right user namespace. A new
/// pid namespace applies to children only: the real init is forked (with CLONE_PARENT, so that it is berth's child and
/// dies with it) and this intermediate process exits after telling the parent the init's pid.
fn enter_namespaces_staged(args: &InitArgs) -> Result<()> {
    use nix::sched::CloneFlags;
    namespaces::enter_all(&args.plan.joins)?;
    let ns = &args.config.namespaces;
    if ns.new_user {
        namespaces::unshare(CloneFlags::CLONE_NEWUSER, "user namespace")?;
        args.channel.send(&Message::MapIds)?;
        match args.channel.recv(None).context("waiting for the id maps")? {
            Message::Go(_) => {}
            other => anyhow::bail!("unexpected message from the parent: {other:?}"),
        }
    }
    let rest = ns.clone_flags - (CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID);
    if !rest.is_empty() {
        namespaces::unshare(rest, &format!("{rest:?}"))?;
    }
    if ns.new_pid {
        namespaces::unshare(CloneFlags::CLONE_NEWPID, "pid namespace")?;
        match crate::sys::clone3_fork(libc::CLONE_PARENT as u64, None).context("fork the init")? {
            crate::sys::Forked::Child => die_with_parent(args.parent)?,
            crate::sys::Forked::Parent(pid) => {
                args.channel.send(&Message::Forked(pid.as_raw()))?;
                std::process::exit(0);
            }
        }
    }
    Ok(())
}

/// Asks `create` for the source of bind mount #`index` as a detached mount, made with the host's credentials (only
/// the host side may set MOUNT_ATTR_IDMAP on a host filesystem, or open a source the container's user cannot reach).
/// A failure there is `create`'s to report: it kills us.
fn ask_host_tree(channel: &Channel, index: usize) -> Result<std::os::fd::OwnedFd, String> {
    let ask = |e: super::sync::Error| format!("ask berth for it: {e}");
    channel.send(&Message::IdmapRequest(index)).map_err(ask)?;
    match channel.recv_fd(None).map_err(ask)? {
        (Message::IdmapFd, Some(fd)) => Ok(fd),
        (other, _) => Err(format!("unexpected answer from berth: {other:?}")),
    }
}

/// The shared process setup for the container's process.
fn process_setup<'a>(args: &'a InitArgs) -> super::setup::Setup<'a> {
    super::setup::Setup {
        process: &args.config.process,
        preserve_fds: args.preserve_fds,
        seccomp: args.seccomp,
        seccomp_listener: args.seccomp_listener.as_ref(),
    }
}

/// Blocks until `start` connects and sends `Start`, then runs the last steps and execs. Returns an exit code only
/// on failure, after telling `start` why.
fn wait_and_exec(args: &InitArgs, prepared: Prepared) -> i32 {
    let Prepared { program, state } = prepared;
    let Ok(conn) = args.start_listener.accept() else {
        return 1;
    };
    if !matches!(conn.recv(None), Ok(Message::Start)) {
        return 1;
    }
    if let Err(e) = args.hooks.start_container(&state, program.env_strings()) {
        let _ = conn.send(&Message::Error(crate::logging::chain(
            &anyhow::Error::from(e),
        )));
        return 1;
    }
    // Made only now, so that the created container holds no descriptor of it (and only where the seccomp filter,
    // on by now, lets the calls that make it through).
    let stub = super::exec_stub::Stub::for_process_under_filter(&args.config.process, args.seccomp);
    // The connection is close-on-exec: `start` sees EOF the moment execve succeeds.
    let report = super::setup::exec(&program, stub.as_ref(), conn.raw_fd());
    let _ = conn.send(&Message::Error(report));
    127
}

fn make_cwd(cwd: &std::path::Path) -> Result<()> {
    let root = crate::resolve::Root::open(std::path::Path::new("/")).context("open /")?;
    root.mkdir_all(cwd, 0o755)
        .map(drop)
        .with_context(|| format!("create cwd {}", cwd.display()))
}
