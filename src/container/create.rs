//! `create`, parent side, as five steps: [`validate`] → [`state_and_cgroup`] → [`clone_init`] (all namespace flags
//! at once, into the cgroup on v2) → [`drive_init`] (id maps, `Go`, runtime hooks when asked, until `Ready`) →
//! [`report_ready`] (record `created`, `Detach`). The messages are written down on [`Message`]. Any failure undoes
//! everything made so far (see [`Undo`]).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::Flock;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::pidfd_socket::{Kind, PidfdSocket};
use super::state::{self, State, StateDir, Status};
use crate::cgroups;
use crate::config;
use crate::namespaces::trip::Trip;
use crate::namespaces::{self, idmap, Plan};
use crate::process::hooks::Phase;
use crate::process::init::{self, InitArgs};
use crate::process::sync::{self, Message};
use crate::sys::{clone3_fork, Forked};

/// How long the parent waits for any one step of the init (hooks have their own, longer, timeouts).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: receives a pidfd of the init once it is ready.
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` without -d: berth stays with the container; with process.terminal it relays the pty itself.
    pub foreground: bool,
    /// `--systemd-cgroup`: systemd makes the cgroup (a transient scope).
    pub systemd_cgroup: bool,
    /// Rootless (see commands::rootless): cgroups this caller may not write are gone without, unless needed.
    pub rootless_cgroups: bool,
}

/// What `create` made: the init, and for a foreground terminal the pty master with berth's own terminal.
pub struct Created {
    pub pid: Pid,
    pub relay: Option<super::foreground::Relay>,
}

/// runc's rules for a terminal and the console socket (and its words, "runc" read as "berth").
pub fn check_terminal(terminal: bool, detach: bool, console_socket: bool) -> Result<()> {
    if detach && terminal && !console_socket {
        bail!("cannot allocate tty if berth will detach without setting console socket");
    }
    if (!detach || !terminal) && console_socket {
        bail!("cannot use console socket if berth will not detach or allocate tty");
    }
    Ok(())
}

/// Undoes a failed create: kills the init, removes the cgroup and the state dir. Disarmed on success.
struct Undo<'a> {
    dir: &'a StateDir,
    /// Without a mount namespace the init mounted in berth's own: the rootfs whose mounts to take down.
    host_mounts: Option<PathBuf>,
    cgroup: Option<Box<dyn cgroups::Manager>>,
    pid: Option<Pid>,
    armed: bool,
}

impl Undo<'_> {
    /// The container's cgroup, once [`state_and_cgroup`] made it.
    fn cgroup(&self) -> &dyn cgroups::Manager {
        self.cgroup.as_deref().expect("made before the clone")
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            for p in cg.pids().unwrap_or_default() {
                let _ = kill(p, Signal::SIGKILL);
            }
            let _ = cg.destroy();
        }
        if let Some(rootfs) = &self.host_mounts {
            let _ = crate::rootfs::unmount_all_under(rootfs);
        }
        let _ = self.dir.remove();
    }
}

/// Creates the container; on return its init waits for `start`. Returns the init's host pid.
pub fn create(opts: &CreateOptions) -> Result<Pid> {
    create_container(opts).map(|c| c.pid)
}

/// [`create`], also handing back a foreground terminal (see [`CreateOptions::foreground`]): the parent's side of
/// the protocol written on [`Message`], step by step. Any failure undoes what exists so far (see [`Undo`]).
pub fn create_container(opts: &CreateOptions) -> Result<Created> {
    let mut checked = validate(opts)?;
    let dir = StateDir::new(&opts.root, &opts.id);
    // The arbiter between concurrent creates: only the create that made the directory goes on (and may undo).
    dir.create()?;
    let mut undo = Undo {
        dir: &dir,
        host_mounts: (!checked.bundle.config.namespaces.mount)
            .then(|| checked.bundle.rootfs.clone()),
        cgroup: None,
        pid: None,
        armed: true,
    };
    let (lock, mut st) = state_and_cgroup(opts, &checked, &dir, &mut undo)?;
    let init = clone_init(opts, &mut checked, &lock, &st, &mut undo)?;
    let (pid, master) = drive_init(&checked, &dir, &mut st, &init, &mut undo)?;
    // The init is ready and waits for Detach: alive, its pid cannot have been reused.
    if let Some(socket) = &checked.pidfd_socket {
        socket.send(pid, Kind::Init)?;
    }
    let relay = report_ready(
        opts,
        checked.host_console,
        &dir,
        &mut st,
        &init,
        pid,
        master,
    )?;
    undo.armed = false;
    Ok(Created { pid, relay })
}

/// What [`validate`] found: the bundle and what is derived from it before anything exists.
struct Checked {
    bundle: config::Bundle,
    plan: Plan,
    /// process.terminal in the foreground: berth relays the pty to its own terminal.
    relay_terminal: bool,
    host_console: Option<super::foreground::HostConsole>,
    console_socket: Option<UnixStream>,
    pidfd_socket: Option<PidfdSocket>,
}

/// Step 1, validate: the id, the bundle (translated, its seccomp profile compiled) and every check that needs no
/// kernel object (rootfs, terminal, LSM, namespaces); the console and pidfd sockets connected. Nothing exists yet, so a failure leaves nothing
/// behind.
fn validate(opts: &CreateOptions) -> Result<Checked> {
    config::validate_id(&opts.id)?;
    let bundle = config::load_bundle(&opts.bundle)?;
    let config = &bundle.config;
    crate::rootfs::validate(config)?;
    let (linux, process) = (&config.linux, &config.process);
    let terminal = process.terminal;
    check_terminal(terminal, !opts.foreground, opts.console_socket.is_some())?;
    let relay_terminal = terminal && opts.foreground;
    // Before anything exists: without a terminal to relay to, nothing is left behind.
    let host_console = relay_terminal
        .then(|| super::foreground::HostConsole::find(3 + opts.preserve_fds as i32))
        .transpose()?;
    if let Some(f) = &linux.seccomp {
        // runc's debug line (its suite reads the number): the flags seccomp(2) will get.
        crate::logging::debug(&format!("seccomp filter flags: {}", f.program.flags));
    }
    crate::lsm::check(
        process.apparmor_profile.as_deref(),
        process.selinux_label.as_deref(),
        linux.mount_label.as_deref(),
    )?;
    let plan = Plan::open(&config.namespaces)?;
    // Connected before anything exists, so that a missing or non-listening socket fails cleanly.
    let console_socket = match (&opts.console_socket, terminal) {
        (Some(path), true) => Some(crate::process::tty::connect(path)?),
        _ => None,
    };
    let pidfd_socket = opts
        .pidfd_socket
        .as_deref()
        .map(PidfdSocket::connect)
        .transpose()?;
    Ok(Checked {
        bundle,
        plan,
        relay_terminal,
        host_console,
        console_socket,
        pidfd_socket,
    })
}

/// Step 2, state and cgroup: the lock, config.json and state.json (recorded before the cgroup and the init exist,
/// so that `delete` can always find them), then the cgroup with its resources.
fn state_and_cgroup(
    opts: &CreateOptions,
    c: &Checked,
    dir: &StateDir,
    undo: &mut Undo,
) -> Result<(Flock<File>, State)> {
    let config = &c.bundle.config;
    let linux = &config.linux;
    let lock = dir.lock()?;
    dir.write_atomic(state::CONFIG_FILE, &c.bundle.raw)?;
    let cgroup = cgroups::for_container(
        linux.cgroups_path.as_deref(),
        Some(&config.annotations),
        &opts.id,
        opts.systemd_cgroup,
        opts.rootless_cgroups,
    )?;
    let cgroup = match opts.rootless_cgroups {
        true => cgroups::rootless::restrict(cgroup, &linux.resources)?,
        false => cgroup,
    };
    // A cgroup frozen beforehand would freeze the init mid-setup and leave create hanging: refuse, in runc's words.
    if cgroup.is_frozen() {
        bail!("container's cgroup unexpectedly frozen");
    }
    // Another container's processes in it would share its limits and die with its delete: refuse, in runc's words.
    let already = cgroup.pids()?.len();
    if already > 0 {
        bail!("container's cgroup is not empty: {already} process(es) found");
    }
    let st = State {
        id: opts.id.clone(),
        status: Status::Creating,
        pid: 0,
        pid_start_time: 0,
        bundle: c.bundle.dir.clone(),
        rootfs: c.bundle.rootfs.clone(),
        created: crate::time::now_rfc3339(),
        owner: owner_name(),
        annotations: config
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cgroup_paths: cgroup.paths().clone(),
        own_pid_ns: config.namespaces.new_pid,
        host_mounts: !config.namespaces.mount,
        has_hooks: !config.hooks.is_empty(),
        systemd: cgroup
            .systemd_unit()
            .map(|(unit, slice)| state::SystemdUnit {
                unit: unit.into(),
                slice: slice.into(),
            }),
    };
    dir.save(&st)?;
    let cgroup = undo.cgroup.insert(cgroup);
    cgroup.create()?;
    match opts.rootless_cgroups {
        true => cgroups::rootless::apply(cgroup.as_ref(), &linux.resources)?,
        false => cgroup.apply(&linux.resources)?,
    }
    Ok((lock, st))
}

/// The init as the parent holds it after the clone.
struct Init {
    pid: Pid,
    channel: sync::Channel,
    /// Born in its cgroup (CLONE_INTO_CGROUP, v2); on v1 the parent adds it.
    in_cgroup: bool,
}

/// Step 3, clone: the start socket and the channel, then **one `clone3`** with every namespace flag the plan lets
/// it carry (into the cgroup on v2), from inside the pid and time namespaces the init must be born in. The child
/// runs [`init::run`] and never returns here.
fn clone_init(
    opts: &CreateOptions,
    c: &mut Checked,
    lock: &Flock<File>,
    st: &State,
    undo: &mut Undo,
) -> Result<Init> {
    let console_socket = c.console_socket.take();
    let c = &*c;
    let config = &c.bundle.config;
    let ns = &config.namespaces;
    let cgroup_fd = undo.cgroup().clone_fd()?;
    let listener = bind_start_socket(state::lock_fd(lock))?;
    let (parent_chan, init_chan) = sync::pair()?;
    let me = nix::unistd::getpid();

    // On the host, before the clone: the init inherits the connection and sends the notify fd over it.
    let seccomp_listener = match &config.linux.seccomp {
        Some(f) => f.connect_listener()?,
        None => None,
    };
    // The fast path creates every namespace with the clone; the staged one creates them from inside the init.
    let clone_flags = if ns.needs_staged_setup() {
        CloneFlags::empty()
    } else {
        ns.clone_flags
    };
    let host_binds = crate::namespaces::may_enter_mount_ns();
    let trip = enter_birth_namespaces(&c.plan, ns)?;
    let forked = clone3_fork(
        clone_flags.bits() as u64,
        cgroup_fd.as_ref().map(|f| f.as_fd()),
    );
    let forked = match forked {
        Ok(Forked::Child) => {
            init::run(InitArgs {
                config,
                rootfs: c.bundle.rootfs.clone(),
                plan: &c.plan,
                channel: init_chan,
                start_listener: listener,
                cgroup_paths: &st.cgroup_paths,
                no_pivot: opts.no_pivot,
                preserve_fds: opts.preserve_fds,
                no_new_keyring: opts.no_new_keyring,
                id: &opts.id,
                terminal: c.relay_terminal,
                close_fds: [state::lock_fd(lock), parent_chan.raw_fd()]
                    .into_iter()
                    .chain(c.host_console.as_ref().map(|h| h.raw_fd()))
                    .chain(c.pidfd_socket.as_ref().map(|s| s.raw_fd()))
                    .collect(),
                parent: me,
                seccomp: config.linux.seccomp.as_ref(),
                seccomp_listener,
                hooks: &config.hooks,
                console_socket,
                host_binds,
            });
        }
        other => other,
    };
    trip.leave()?;
    let pid = match forked {
        Ok(Forked::Parent(pid)) => pid,
        Ok(Forked::Child) => unreachable!("the child never returns from init::run"),
        Err(e) => bail!("clone3 with {clone_flags:?}: {e}"),
    };
    undo.pid = Some(pid);
    drop(init_chan);
    drop(listener);
    drop(console_socket);
    drop(seccomp_listener);
    Ok(Init {
        pid,
        channel: parent_chan,
        in_cgroup: cgroup_fd.is_some(),
    })
}

/// Step 4, drive the init: record its pid, write its id maps, put it in its cgroup (v1) and set its
/// oom_score_adj, send `Go`, then answer its requests (staged id maps, the forked init, runtime hooks, idmapped
/// mounts, the pty master, warnings) until it is `Ready`. Returns the init's pid (the staged path forks a new one)
/// and the pty master to relay, if any.
fn drive_init(
    c: &Checked,
    dir: &StateDir,
    st: &mut State,
    init: &Init,
    undo: &mut Undo,
) -> Result<(Pid, Option<OwnedFd>)> {
    let config = &c.bundle.config;
    let (linux, process) = (&config.linux, &config.process);
    let (chan, mut pid) = (&init.channel, init.pid);
    record_pid(dir, st, pid)?;

    let (uid_maps, gid_maps) = (&linux.uid_mappings, &linux.gid_mappings);
    if config.namespaces.new_user && !config.namespaces.needs_staged_setup() {
        idmap::write_maps(pid, uid_maps, gid_maps)?;
    }
    if !init.in_cgroup {
        undo.cgroup().add_task(pid)?;
    }
    // From the host, before the init goes on (whatever it forks and the program inherit it): inside a user
    // namespace the init could not write its own, its /proc files belonging to the host's root once it is
    // non-dumpable.
    if let Some(score) = process.oom_score_adj {
        crate::procfs::write_oom_score_adj(pid.as_raw(), score).with_context(|| {
            format!("set oom_score_adj to {score} (lowering it needs CAP_SYS_RESOURCE)")
        })?;
    }
    send(chan, &Message::Go(st.oci(Status::Creating)), pid)?;
    let mut idmapped = crate::rootfs::idmap::Maker::default();
    let mut master = None;
    loop {
        let (msg, fd) = recv_with_fd(chan, pid)?;
        match msg {
            // Staged setup: the intermediate made its user namespace; later it forks the real init and exits.
            Message::MapIds => {
                idmap::write_maps(pid, uid_maps, gid_maps)?;
                send(chan, &Message::Go(st.oci(Status::Creating)), pid)?;
            }
            Message::Forked(init) => {
                let _ = waitpid(pid, None);
                pid = Pid::from_raw(init);
                undo.pid = Some(pid);
                record_pid(dir, st, pid)?;
            }
            Message::RunHooks => {
                let oci = st.oci(Status::Creating);
                config.hooks.run_phase(Phase::Prestart, &oci)?;
                config.hooks.run_phase(Phase::CreateRuntime, &oci)?;
                send(chan, &Message::HooksDone, pid)?;
            }
            // The init cannot idmap a host filesystem from its user namespace: berth makes the mount for it.
            Message::IdmapRequest(index) => {
                let tree = idmapped.tree(config, index, pid)?;
                send_fd(chan, &Message::IdmapFd, tree.as_fd(), pid)?;
            }
            Message::Console if c.relay_terminal && fd.is_some() => master = fd,
            Message::Warning(w) => crate::logging::warn(&w),
            Message::Ready => return Ok((pid, master)),
            other => bail!("unexpected message from the init: {other:?}"),
        }
    }
}

/// Step 5, report ready: record `created` and the pid file, then release the init from berth's life (`Detach`);
/// the foreground terminal's relay when there is one.
fn report_ready(
    opts: &CreateOptions,
    host_console: Option<super::foreground::HostConsole>,
    dir: &StateDir,
    st: &mut State,
    init: &Init,
    pid: Pid,
    master: Option<OwnedFd>,
) -> Result<Option<super::foreground::Relay>> {
    st.status = Status::Created;
    dir.save(st)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    send(&init.channel, &Message::Detach, pid)?;
    match recv(&init.channel, pid)? {
        Message::Detached => {}
        other => bail!("unexpected message from the init: {other:?}"),
    }
    Ok(match (host_console, master) {
        (Some(host), Some(master)) => Some(super::foreground::Relay::new(master, host)?),
        (Some(_), None) => bail!("the init sent no pty master"),
        _ => None,
    })
}

/// Records the init's pid with its start time (so a reused pid is never taken for it).
fn record_pid(dir: &StateDir, st: &mut State, pid: Pid) -> Result<()> {
    st.pid = pid.as_raw();
    st.pid_start_time = match state::proc_state(pid.as_raw()) {
        state::ProcState::Alive { start_time } => start_time,
        state::ProcState::Dead => bail!("the init (pid {pid}) died during setup"),
    };
    Ok(dir.save(st)?)
}

/// Receives from the init; an error report or a dead init becomes an error naming what failed.
fn recv(chan: &sync::Channel, pid: Pid) -> Result<Message> {
    match chan.recv(Some(STEP_TIMEOUT)) {
        Ok(Message::Error(e)) => Err(anyhow!("{e}")),
        Ok(m) => Ok(m),
        Err(sync::Error::Closed) => Err(anyhow!("the init (pid {pid}) exited during setup")),
        Err(e) => Err(e.into()),
    }
}

/// [`recv`] of a message that may carry a descriptor (the pty master).
fn recv_with_fd(chan: &sync::Channel, pid: Pid) -> Result<(Message, Option<OwnedFd>)> {
    match chan.recv_fd(Some(STEP_TIMEOUT)) {
        Ok((Message::Error(e), _)) => Err(anyhow!("{e}")),
        Ok(m) => Ok(m),
        Err(sync::Error::Closed) => Err(anyhow!("the init (pid {pid}) exited during setup")),
        Err(e) => Err(e.into()),
    }
}

/// Sends to the init; if it is gone, its last report (if any) is the better error.
fn send(chan: &sync::Channel, msg: &Message, pid: Pid) -> Result<()> {
    if let Err(e) = chan.send(msg) {
        return match chan.recv(Some(Duration::from_millis(100))) {
            Ok(Message::Error(report)) => Err(anyhow!("{report}")),
            _ => Err(anyhow!("the init (pid {pid}) exited during setup ({e})")),
        };
    }
    Ok(())
}

/// [`send`] with a descriptor attached.
fn send_fd(
    chan: &sync::Channel,
    msg: &Message,
    fd: std::os::fd::BorrowedFd<'_>,
    pid: Pid,
) -> Result<()> {
    if let Err(e) = chan.send_fd(msg, fd) {
        return match chan.recv(Some(Duration::from_millis(100))) {
            Ok(Message::Error(report)) => Err(anyhow!("{report}")),
            _ => Err(anyhow!("the init (pid {pid}) exited during setup ({e})")),
        };
    }
    Ok(())
}

/// Binds the start socket in the state dir. The path goes through /proc/self/fd/<dir> so that it stays short
/// whatever the root and id (sun_path has 108 bytes).
fn bind_start_socket(dir: RawFd) -> Result<sync::Listener> {
    let path = format!("/proc/self/fd/{dir}/{}", state::START_SOCKET);
    sync::Listener::bind(&path).with_context(|| format!("bind start socket {path}"))
}

pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("write pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write pid file {}", path.display()))
}

fn owner_name() -> String {
    // runc leaves owner empty for root-owned containers; so does berth.
    String::new()
}

/// berth's own trip into the pid and time namespaces that the init must be born in (they apply to children), left
/// right after the clone so that hooks berth runs later stay in the runtime's namespaces.
fn enter_birth_namespaces(plan: &Plan, ns: &config::Namespaces) -> Result<Trip> {
    let mut trip = Trip::new();
    for j in &plan.pre_joins {
        let what = format!(
            "{} namespace {}",
            namespaces::kind_name(j.kind),
            j.path.display()
        );
        trip.join(j.fd.as_fd(), namespaces::clone_flag(j.kind), &what)?;
    }
    if ns.new_time {
        let flag = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        trip.unshare(flag, "time namespace")?;
        if let Some(offsets) = &ns.time_offsets {
            namespaces::write_time_offsets(offsets)?;
        }
    }
    Ok(trip)
}
