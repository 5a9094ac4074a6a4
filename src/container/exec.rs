//! `exec`, parent side: a new process in a running container. Top to bottom: check the container → build the
//! process (the config's, or `--process FILE`, with the flags applied) → clone3 an intermediate straight into the
//! container's cgroup (v2; v1 writes its pid right after) → the intermediate joins all the init's namespaces and
//! forks the process into the pid namespace (process::exec_into) → the process runs the shared setup and execs →
//! wait (foreground) or return (detached).
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
use oci_spec::runtime::{Process, Spec};
use serde_json::{json, Value};

use super::foreground::{Forwarder, HostConsole, Relay};
use super::state::{self, StateDir, Status};
use crate::cgroups;
use crate::process::exec_into::{self, ExecArgs};
use crate::process::sync::{self, Message};
use crate::sys::{clone3_fork, Forked};

/// How long the parent waits for the child to get from the clone to its execve.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The flags of `berth exec` that shape the process.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

pub struct ExecOptions {
    pub process_file: Option<PathBuf>,
    pub overrides: Overrides,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Exec in a paused container too (the process sets up and runs once it is resumed).
    pub ignore_paused: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("process {path}: {reason}")]
    ProcessFile { path: String, reason: String },
    #[error("--user {0:?}: expected uid[:gid] (numbers)")]
    User(String),
}

/// The keys runtime-spec defines for `process` and its objects; anything else in a process file is refused (a
/// misspelt key would otherwise be silently ignored).
const PROCESS_KEYS: &[&str] = &[
    "terminal",
    "consoleSize",
    "user",
    "args",
    "commandLine",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "ioPriority",
    "scheduler",
    "execCPUAffinity",
];
const USER_KEYS: &[&str] = &["uid", "gid", "umask", "additionalGids", "username"];
const CAPS_KEYS: &[&str] = &[
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];
const SIZE_KEYS: &[&str] = &["height", "width"];
const RLIMIT_KEYS: &[&str] = &["type", "soft", "hard"];

fn check_keys(v: &Value, allowed: &[&str], at: &str) -> std::result::Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("{at}: expected an object"));
    };
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{at}: unknown field {k:?}"));
        }
    }
    Ok(())
}

/// Checks a process document for unknown fields (types are checked when it is decoded).
pub fn check_process_fields(v: &Value) -> std::result::Result<(), String> {
    check_keys(v, PROCESS_KEYS, "process")?;
    if let Some(u) = v.get("user") {
        check_keys(u, USER_KEYS, "process.user")?;
    }
    if let Some(c) = v.get("capabilities") {
        check_keys(c, CAPS_KEYS, "process.capabilities")?;
    }
    if let Some(s) = v.get("consoleSize") {
        check_keys(s, SIZE_KEYS, "process.consoleSize")?;
    }
    if let Some(Value::Array(rl)) = v.get("rlimits") {
        for r in rl {
            check_keys(r, RLIMIT_KEYS, "process.rlimits[]")?;
        }
    }
    Ok(())
}

fn push_unique(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    let arr = list.as_array_mut().expect("just made an array");
    if !arr.contains(&item) {
        arr.push(item);
    }
}

/// The process to run: `base` (the container's process, or a process file) with the flags applied, decoded.
pub fn build_process(
    mut v: Value,
    o: &Overrides,
    from_file: bool,
) -> std::result::Result<Process, String> {
    if !v.is_object() {
        return Err("process: expected an object".into());
    }
    if !from_file && !o.args.is_empty() {
        v["args"] = json!(o.args);
    }
    if let Some(cwd) = &o.cwd {
        v["cwd"] = json!(cwd);
    }
    for e in &o.env {
        push_unique(&mut v["env"], json!(e));
    }
    // As runc: a terminal only with -t (or a process file saying so), never from the container's config.
    if !from_file {
        v["terminal"] = json!(o.tty);
    } else if o.tty {
        v["terminal"] = json!(true);
    }
    if let Some(u) = &o.user {
        let (uid, gid) = parse_user(u).map_err(|e| e.to_string())?;
        v["user"]["uid"] = json!(uid);
        if let Some(g) = gid {
            v["user"]["gid"] = json!(g);
        }
    }
    for g in &o.additional_gids {
        push_unique(&mut v["user"]["additionalGids"], json!(g));
    }
    for cap in &o.caps {
        let name = if cap.starts_with("CAP_") {
            cap.clone()
        } else {
            format!("CAP_{}", cap.to_uppercase())
        };
        // Never inheritable: that would pass it to programs the process runs (runc's CVE-2022-29162 fix).
        // Ambient too, as runc, when the process has an inheritable set: the kernel raises it only where
        // that set (the config's) allows, and warns otherwise.
        let has_inheritable = !v["capabilities"]["inheritable"].is_null();
        for set in ["bounding", "effective", "permitted"] {
            push_unique(&mut v["capabilities"][set], json!(name));
        }
        if has_inheritable {
            push_unique(&mut v["capabilities"]["ambient"], json!(name));
        }
    }
    if o.no_new_privs {
        v["noNewPrivileges"] = json!(true);
    }
    if let Some(a) = &o.apparmor {
        v["apparmorProfile"] = json!(a);
    }
    if let Some(l) = &o.process_label {
        v["selinuxLabel"] = json!(l);
    }
    if v.get("user").is_none() {
        v["user"] = json!({"uid": 0, "gid": 0});
    }
    if v.get("cwd").is_none() {
        v["cwd"] = json!("/");
    }
    crate::config::translate_scheduler_flags(&mut v);
    let p: Process = serde_json::from_value(v).map_err(|e| format!("process: {e}"))?;
    crate::process::attrs::validate(&p)?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args is empty: give a command".into());
    }
    if !p.cwd().is_absolute() {
        return Err(format!(
            "process.cwd {:?} must be an absolute path",
            p.cwd()
        ));
    }
    Ok(p)
}

/// `uid[:gid]`, numeric as runc takes it.
pub fn parse_user(s: &str) -> std::result::Result<(u32, Option<u32>), Error> {
    let bad = || Error::User(s.to_string());
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

fn load_process(dir: &StateDir, opts: &ExecOptions) -> Result<(Spec, Process)> {
    let raw = std::fs::read(dir.file(state::CONFIG_FILE))
        .with_context(|| format!("read {}", dir.file(state::CONFIG_FILE).display()))?;
    let mut config: Value = serde_json::from_slice(&raw).context("saved config.json")?;
    if let Some(p) = config.get_mut("process") {
        crate::config::translate_scheduler_flags(p);
    }
    let spec: Spec = serde_json::from_value(config.clone()).context("saved config.json")?;
    let (base, from_file) = match &opts.process_file {
        Some(path) => {
            let perr = |reason: String| Error::ProcessFile {
                path: path.display().to_string(),
                reason,
            };
            let text = std::fs::read(path).map_err(|e| perr(e.to_string()))?;
            let v: Value = serde_json::from_slice(&text).map_err(|e| perr(e.to_string()))?;
            check_process_fields(&v).map_err(perr)?;
            (v, true)
        }
        None => (config.get("process").cloned().unwrap_or(json!({})), false),
    };
    let process =
        build_process(base, &opts.overrides, from_file).map_err(|reason| Error::ProcessFile {
            path: opts
                .process_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(from the container's config and flags)".into()),
            reason,
        })?;
    Ok((spec, process))
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

/// Runs a new process in the container. Foreground: returns its exit code (128+N on signal N). Detached: 0 once
/// it has exec'd.
pub fn exec(dir: &StateDir, opts: &ExecOptions) -> Result<i32> {
    let st = dir.load()?;
    match super::status_of(dir, &st) {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        other => bail!("cannot exec in a container that is {other}"),
    }
    let (spec, mut process) = load_process(dir, opts)?;
    // As create checks the init's: a profile or label the host cannot apply is a clear error before any clone.
    crate::lsm::check(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
        None,
    )?;
    let terminal = process.terminal().unwrap_or(false);
    super::create::check_terminal(terminal, opts.detach, opts.console_socket.is_some())?;
    let host_console = (terminal && !opts.detach)
        .then(|| HostConsole::find(3 + opts.preserve_fds as i32))
        .transpose()?;
    // The child sizes the pty as berth's terminal before its program can ask (the relay alone would race it).
    if let Some((rows, cols)) = host_console.as_ref().and_then(|h| h.size()) {
        let size = oci_spec::runtime::BoxBuilder::default()
            .height(rows)
            .width(cols)
            .build()
            .context("console size")?;
        process.set_console_size(Some(size));
    }
    let console_socket = match (&opts.console_socket, terminal) {
        (Some(path), true) => Some(crate::process::tty::connect(path)?),
        _ => None,
    };
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::process::seccomp::compile)
        .transpose()?;
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
    let cgroup_fd = cgroup.clone_fd()?;

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
            seccomp: seccomp.as_ref(),
            seccomp_listener,
            close_fds: cgroup_fd.iter().map(|f| f.as_raw_fd()).collect(),
            linux: spec.linux().as_ref(),
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
            cgroup.add_task(intermediate)?;
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
    if let Some(pf) = &opts.pid_file {
        super::create::write_pid_file(pf, pid)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({
            "args": ["sleep", "100"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        })
    }

    #[test]
    fn flags_override_the_containers_process() {
        let o = Overrides {
            args: vec!["sh".into(), "-c".into(), "id".into()],
            cwd: Some("/tmp".into()),
            env: vec!["A=1".into()],
            tty: true,
            user: Some("1000:100".into()),
            additional_gids: vec![5, 6],
            caps: vec!["CAP_CHOWN".into(), "net_raw".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = build_process(base(), &o, false).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["sh", "-c", "id"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=1"]);
        assert_eq!(p.terminal(), Some(true));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[5, 6]);
        let caps = p.capabilities().as_ref().unwrap();
        let eff = caps.effective().as_ref().unwrap();
        assert_eq!(eff.len(), 3);
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 3);
        assert_eq!(caps.permitted().as_ref().unwrap().len(), 3);
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
    }

    /// As runc: given an inheritable set (even an empty one), `--cap` goes into ambient as well, never into
    /// inheritable; the kernel keeps it in ambient only if the config made it inheritable.
    #[test]
    fn cap_goes_to_ambient_only_when_the_process_has_an_inheritable_set() {
        let o = Overrides {
            caps: vec!["CAP_SYSLOG".into()],
            ..Default::default()
        };
        for inh in [json!(["CAP_CHOWN", "CAP_SYSLOG"]), json!([])] {
            let mut config = base();
            config["capabilities"]["inheritable"] = inh.clone();
            config["capabilities"]["ambient"] = json!(["CAP_CHOWN"]);
            let p = build_process(config, &o, false).unwrap();
            let caps = p.capabilities().as_ref().unwrap();
            let amb = caps.ambient().as_ref().unwrap();
            assert_eq!(amb.len(), 2, "{inh}: {amb:?}");
            assert_eq!(
                caps.inheritable().as_ref().unwrap().len(),
                inh.as_array().unwrap().len()
            );
        }
    }

    #[test]
    fn terminal_comes_from_t_or_a_process_file_never_from_the_config() {
        let mut config = base();
        config["terminal"] = json!(true);
        let p = build_process(config.clone(), &Overrides::default(), false).unwrap();
        assert_eq!(p.terminal(), Some(false));
        let t = Overrides {
            tty: true,
            ..Default::default()
        };
        assert_eq!(
            build_process(base(), &t, false).unwrap().terminal(),
            Some(true)
        );
        let p = build_process(config, &Overrides::default(), true).unwrap();
        assert_eq!(p.terminal(), Some(true));
    }

    #[test]
    fn a_process_file_keeps_its_own_args() {
        let o = Overrides {
            args: vec!["ignored".into()],
            ..Default::default()
        };
        let p = build_process(base(), &o, true).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["sleep", "100"]);
    }

    #[test]
    fn bad_process_documents_are_clear_errors() {
        let mut v = base();
        v["argz"] = json!(["x"]);
        assert!(check_process_fields(&v).unwrap_err().contains("\"argz\""));
        let mut v = base();
        v["user"]["uidd"] = json!(1);
        assert!(check_process_fields(&v)
            .unwrap_err()
            .contains("process.user"));
        let mut v = base();
        v["args"] = json!("sh");
        let e = build_process(v, &Overrides::default(), true).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let mut v = base();
        v["args"] = json!([]);
        assert!(build_process(v, &Overrides::default(), true).is_err());
        let mut v = base();
        v["cwd"] = json!("rel");
        assert!(build_process(v, &Overrides::default(), true).is_err());
        assert!(check_process_fields(&base()).is_ok());
    }

    #[test]
    fn user_flag_is_numeric_uid_and_optional_gid() {
        assert_eq!(parse_user("10").unwrap(), (10, None));
        assert_eq!(parse_user("10:20").unwrap(), (10, Some(20)));
        assert!(parse_user("root").is_err());
        assert!(parse_user("1:x").is_err());
    }
}
