//! OCI hooks: each gets the container state on stdin, runs with its own args and env, and is killed after its
//! timeout. Where a hook runs (runtime or container namespace) is decided by who calls [`Hooks::run_phase`].

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Spec};

use crate::oci_state::{OciState, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    /// The status a hook of this phase sees in the state on its stdin.
    fn status(self) -> Status {
        match self {
            Phase::Prestart | Phase::CreateRuntime | Phase::CreateContainer => Status::Creating,
            Phase::StartContainer => Status::Created,
            Phase::Poststart => Status::Running,
            Phase::Poststop => Status::Stopped,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{phase} hook {path}: {reason}")]
    Failed {
        phase: &'static str,
        path: String,
        reason: String,
    },
}

#[derive(Debug, Default, Clone)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn from_spec(spec: &Spec) -> Hooks {
        let Some(h) = spec.hooks() else {
            return Hooks::default();
        };
        let get = |v: &Option<Vec<Hook>>| v.clone().unwrap_or_default();
        #[allow(deprecated)]
        let prestart = get(h.prestart());
        Hooks {
            prestart,
            create_runtime: get(h.create_runtime()),
            create_container: get(h.create_container()),
            start_container: get(h.start_container()),
            poststart: get(h.poststart()),
            poststop: get(h.poststop()),
        }
    }

    pub fn of(&self, phase: Phase) -> &[Hook] {
        match phase {
            Phase::Prestart => &self.prestart,
            Phase::CreateRuntime => &self.create_runtime,
            Phase::CreateContainer => &self.create_container,
            Phase::StartContainer => &self.start_container,
            Phase::Poststart => &self.poststart,
            Phase::Poststop => &self.poststop,
        }
    }

    /// Runs a phase's hooks in order; the first failure stops the phase and is returned.
    pub fn run_phase(&self, phase: Phase, state: &OciState) -> Result<(), Error> {
        self.run_in(phase, state, &Inherit::default())
    }

    /// createContainer, run by the init in the container's namespaces before pivot_root: as runc, in the rootfs,
    /// and a hook without `env` gets the process's environment (runc's init has it by then).
    pub fn create_container(
        &self,
        state: &OciState,
        process: &oci_spec::runtime::Process,
        rootfs: &std::path::Path,
    ) -> Result<(), Error> {
        let env = process.env().as_deref().unwrap_or_default();
        let inherit = Inherit {
            env: Some(super::exec::dedup_env(env)),
            cwd: Some(rootfs.to_path_buf()),
        };
        self.run_in(Phase::CreateContainer, state, &inherit)
    }

    /// startContainer, run by the init in the process's cwd: a hook without `env` gets the program's environment
    /// (HOME included), as in runc.
    pub fn start_container(&self, state: &OciState, program_env: Vec<String>) -> Result<(), Error> {
        let inherit = Inherit {
            env: Some(program_env),
            cwd: None,
        };
        self.run_in(Phase::StartContainer, state, &inherit)
    }

    fn run_in(&self, phase: Phase, state: &OciState, inherit: &Inherit) -> Result<(), Error> {
        let hooks = self.of(phase);
        if hooks.is_empty() {
            return Ok(());
        }
        let mut state = state.clone();
        state.status = phase.status();
        let json = serde_json::to_vec(&state).expect("state serialises");
        for hook in hooks {
            run_one(phase, hook, &json, inherit)?;
        }
        Ok(())
    }

    /// Runs every hook of a phase whose failures are only warnings (poststart, poststop): the spec has the remaining
    /// hooks run as if a failed one had succeeded. Returns the failures, in order.
    pub fn run_phase_to_end(&self, phase: Phase, state: &OciState) -> Vec<Error> {
        let hooks = self.of(phase);
        if hooks.is_empty() {
            return Vec::new();
        }
        let mut state = state.clone();
        state.status = phase.status();
        let json = serde_json::to_vec(&state).expect("state serialises");
        hooks
            .iter()
            .filter_map(|hook| run_one(phase, hook, &json, &Inherit::default()).err())
            .collect()
    }
}

/// What a hook gets when its config says nothing: the environment (none by default) and the cwd (berth's).
#[derive(Default)]
struct Inherit {
    env: Option<Vec<String>>,
    cwd: Option<std::path::PathBuf>,
}

fn run_one(phase: Phase, hook: &Hook, state: &[u8], inherit: &Inherit) -> Result<(), Error> {
    let path = hook.path().display().to_string();
    let fail = |reason: String| Error::Failed {
        phase: phase.name(),
        path: path.clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    let env = hook.env().as_ref().or(inherit.env.as_ref());
    for kv in env.iter().copied().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    if let Some(dir) = &inherit.cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("spawn: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    if let Some(t) = timeout {
        let pidfd = crate::sys::pidfd_open(nix::unistd::Pid::from_raw(child.id() as i32))
            .map_err(|e| fail(format!("pidfd_open: {e}")))?;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(t.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let ready = loop {
            match poll(&mut fds, ms) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.unwrap_or(0),
            }
        };
        if ready == 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {}s", t.as_secs())));
        }
    }
    let status = child.wait().map_err(|e| fail(format!("wait: {e}")))?;
    if status.success() {
        return Ok(());
    }
    Err(fail(match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    }))
}
