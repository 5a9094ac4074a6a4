//! The init's side of `create`, top to bottom: wait for the parent (id maps, cgroup) → join namespaces → mounts →
//! runtime hooks → pivot_root → process setup → report ready → wait for `start` → last hooks, seccomp → execve.
//!
//! It runs in the child of a fork of a single-threaded berth, so it may allocate; any error is sent to the parent
//! with its context and the child exits.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::sync::{Channel, Message};
use crate::container::state::{OciState, Status};
use crate::namespaces::{self, Plan};
use crate::rootfs;

/// Everything the init needs, prepared by the parent before the clone.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub plan: &'a Plan,
    pub channel: Channel,
    /// Listening socket in the state dir; `start` connects to it.
    pub start_listener: UnixListener,
    pub cgroup_paths: &'a std::collections::BTreeMap<String, PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub no_new_keyring: bool,
    pub id: &'a str,
    /// Make the inherited stdin the controlling terminal (foreground `run` with process.terminal).
    pub terminal: bool,
    /// Descriptors of the parent that must not survive into the init (the lock, the parent's channel end).
    pub close_fds: Vec<RawFd>,
    pub parent: Pid,
    pub seccomp: Option<&'a super::seccomp::Filter>,
    /// The connection to linux.seccomp.listenerPath that `create` opened on the host (SCMP_ACT_NOTIFY only).
    pub seccomp_listener: Option<std::os::unix::net::UnixStream>,
    pub hooks: &'a crate::container::hooks::Hooks,
    /// process.terminal with --console-socket: the connected socket the pty master is sent over.
    pub console_socket: Option<std::os::unix::net::UnixStream>,
}

/// Runs the init; never returns.
pub fn run(args: InitArgs) -> ! {
    let result = setup(&args);
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
    stub: Option<super::exec_stub::Stub>,
    state: OciState,
}

fn setup(args: &InitArgs) -> Result<Prepared> {
    die_with_parent(args.parent)?;
    for fd in &args.close_fds {
        let _ = nix::unistd::close(*fd);
    }
    crate::container::foreground::reset_signals_for_container().context("reset signal mask")?;
    if args.terminal {
        crate::sys::take_controlling_tty(0).context("make stdin the controlling terminal")?;
    }
    let spec = args.spec;
    let process = spec.process().as_ref().expect("validated");

    let mut state = match args.channel.recv(None).context("waiting for the parent")? {
        Message::Go(state) => state,
        other => anyhow::bail!("unexpected message from the parent: {other:?}"),
    };
    if args.plan.needs_staged_setup() {
        enter_namespaces_staged(args)?;
    } else {
        for join in &args.plan.joins {
            namespaces::enter(join)?;
        }
    }
    let in_user_ns = args.plan.new_user
        || args
            .plan
            .joins
            .iter()
            .any(|j| j.kind == oci_spec::runtime::LinuxNamespaceType::User);
    if in_user_ns {
        // Become root of the user namespace (new and mapped by the parent, or joined) for the setup that follows:
        // files made on filesystems mounted inside it need an id that is mapped there.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .context("setresgid 0 in the user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .context("setresuid 0 in the user namespace")?;
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
    if args.plan.new_cgroup {
        namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP, "cgroup namespace")?;
    }

    let idmapped_tree = |index: usize| ask_idmapped_tree(&args.channel, index);
    let ctx = rootfs::Context {
        spec,
        rootfs: &args.rootfs,
        cgroup_paths: args.cgroup_paths,
        in_user_ns,
        idmapped_tree: &idmapped_tree,
    };
    rootfs::prepare(&ctx).context("rootfs")?;

    if !args.hooks.prestart.is_empty() || !args.hooks.create_runtime.is_empty() {
        args.channel.send(&Message::RunHooks)?;
        match args.channel.recv(None)? {
            Message::HooksDone => {}
            other => anyhow::bail!("unexpected message from the parent: {other:?}"),
        }
    }
    args.hooks.create_container(&state, process, &args.rootfs)?;

    rootfs::enter_root(spec, &args.rootfs, args.no_pivot)?;
    if let Some(socket) = &args.console_socket {
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height(), b.width()));
        let owner = Some((process.user().uid(), process.user().gid()));
        super::tty::setup_console(socket, size, true, owner)?;
    }
    // The cwd is made (when missing) before the root may turn read-only, as runc does.
    let cwd = process.cwd();
    make_cwd(cwd)?;
    rootfs::finish(spec)?;

    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_context(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        crate::sys::setdomainname(d).with_context(|| format!("setdomainname {d:?}"))?;
    }
    if let Some(rl) = process.rlimits() {
        super::rlimits::apply(rl)?;
    }
    super::attrs::apply_init(spec)?;

    enter_cwd(cwd)?;

    let env = process.env().clone().unwrap_or_default();
    let argv = process.args().clone().unwrap_or_default();
    let path = super::exec::find_program(&argv[0], &env, cwd)?;
    let program = super::exec::prepare(path, &argv, &env, process.user().uid())?;
    let stub = super::exec_stub::Stub::for_process(process, args.seccomp);

    // While still root and before the uid switch (our non-dumpable /proc files belong to root).
    super::lsm::apply_on_exec(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;
    let caps = super::caps::CapSets::from_spec(process.capabilities().as_ref())?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // From here on every descriptor opened is close-on-exec; sweep the inherited ones now, before a seccomp filter
    // could forbid close_range.
    keep_only_stdio_and_preserved(args.preserve_fds)?;
    if !nnp {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have it (runc too).
        if let Some(f) = args.seccomp {
            f.load(args.seccomp_listener.as_ref(), &state)?;
        }
    }
    caps.drop_bounding()?;
    let setgroups_allowed = setgroups_allowed();
    super::identity::switch(process.user(), setgroups_allowed)?;
    caps.apply_after_setuid()?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
    }
    // Changing credentials cleared the parent-death signal: set it again until create is done.
    die_with_parent(args.parent)?;
    if let Some(mask) = process.user().umask() {
        crate::sys::set_umask(mask);
    } else {
        crate::sys::set_umask(0o022);
    }

    args.channel.send(&Message::Ready)?;
    match args.channel.recv(None)? {
        Message::Detach => {}
        other => anyhow::bail!("unexpected message from the parent: {other:?}"),
    }
    nix::sys::prctl::set_pdeathsig(None).context("prctl(PR_SET_PDEATHSIG, 0)")?;
    args.channel.send(&Message::Detached)?;
    state.status = Status::Created;
    Ok(Prepared {
        program,
        stub,
        state,
    })
}

/// The staged path, for what one clone cannot express: join (user namespace first), then create the user namespace
/// and have the parent map it, then the other namespaces, so that they are owned by the right user namespace. A new
/// pid namespace applies to children only: the real init is forked (with CLONE_PARENT, so that it is berth's child and
/// dies with it) and this intermediate process exits after telling the parent the init's pid.
fn enter_namespaces_staged(args: &InitArgs) -> Result<()> {
    use nix::sched::CloneFlags;
    for join in &args.plan.joins {
        namespaces::enter(join)?;
    }
    if args.plan.new_user {
        namespaces::unshare(CloneFlags::CLONE_NEWUSER, "user namespace")?;
        args.channel.send(&Message::MapIds)?;
        match args.channel.recv(None).context("waiting for the id maps")? {
            Message::Go(_) => {}
            other => anyhow::bail!("unexpected message from the parent: {other:?}"),
        }
    }
    let rest = args.plan.clone_flags - (CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID);
    if !rest.is_empty() {
        namespaces::unshare(rest, &format!("{rest:?}"))?;
    }
    if args.plan.new_pid {
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

/// Asks `create` for the idmapped mount of config mount #`index` (only the host side may set MOUNT_ATTR_IDMAP on
/// a host filesystem) and receives it as a detached mount. A failure there is `create`'s to report: it kills us.
fn ask_idmapped_tree(channel: &Channel, index: usize) -> Result<std::os::fd::OwnedFd, String> {
    let ask = |e: super::sync::Error| format!("ask berth for it: {e}");
    channel.send(&Message::IdmapRequest(index)).map_err(ask)?;
    match channel.recv_fd(None).map_err(ask)? {
        (Message::IdmapFd, Some(fd)) => Ok(fd),
        (other, _) => Err(format!("unexpected answer from berth: {other:?}")),
    }
}

/// In a user namespace whose setgroups is "deny", setgroups(2) fails; read it rather than guess.
fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// Blocks until `start` connects, then runs the last steps and execs. Returns an exit code only on failure, after
/// telling `start` why.
fn wait_and_exec(args: &InitArgs, prepared: Prepared) -> i32 {
    let Prepared {
        program,
        stub,
        state,
    } = prepared;
    let mut conn = loop {
        match args.start_listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return 1,
        }
    };
    let mut byte = [0u8; 1];
    if conn.read_exact(&mut byte).is_err() {
        return 1;
    }
    let result = (|| -> Result<()> {
        args.hooks.start_container(&state, program.env_strings())?;
        if args
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.no_new_privileges())
            .unwrap_or(false)
        {
            if let Some(f) = args.seccomp {
                f.load(args.seccomp_listener.as_ref(), &state)?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = conn.write_all(crate::logging::chain(&e).as_bytes());
        return 1;
    }
    // The connection is close-on-exec: `start` sees EOF the moment execve succeeds.
    let errno = program.exec(stub.as_ref(), conn.as_raw_fd());
    let _ = conn
        .write_all(format!("exec {}: {}", program.path.to_string_lossy(), errno.desc()).as_bytes());
    127
}

/// Only fds 0-2 and the preserved ones (3 .. 3+N) survive execve.
fn keep_only_stdio_and_preserved(preserve: u32) -> Result<()> {
    let first = 3 + preserve as i32;
    crate::sys::cloexec_fds_from(first).context("close_range(CLOEXEC)")?;
    for fd in 3..first {
        crate::sys::clear_cloexec(fd).with_context(|| format!("keep preserved fd {fd}"))?;
    }
    Ok(())
}

/// The container's cwd, resolved inside its root (no magic links such as /proc/self/fd/N, so no descriptor of
/// berth can become the cwd: CVE-2024-21626), created when missing.
fn enter_cwd(cwd: &std::path::Path) -> Result<()> {
    let root = rootfs::resolve::Root::open(std::path::Path::new("/")).context("open /")?;
    let dir = root
        .open_in_root(cwd, nix::fcntl::OFlag::O_DIRECTORY)
        .with_context(|| format!("cwd {}", cwd.display()))?;
    nix::unistd::fchdir(dir.as_raw_fd()).with_context(|| format!("chdir to cwd {}", cwd.display()))
}

fn make_cwd(cwd: &std::path::Path) -> Result<()> {
    let root = rootfs::resolve::Root::open(std::path::Path::new("/")).context("open /")?;
    root.mkdir_all(cwd, 0o755)
        .map(drop)
        .with_context(|| format!("create cwd {}", cwd.display()))
}
