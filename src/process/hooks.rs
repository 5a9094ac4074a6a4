//! OCI hooks: each gets the container state on stdin, runs with its own args and env, and is killed after its
//! timeout. Where a hook runs (runtime or container namespace) is decided by who calls [`Hooks::run_phase`].

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub use crate::config::{Hook, Hooks, Phase};
use crate::oci_state::{OciState, Status};

/// The status a hook of `phase` sees in the state on its stdin.
fn status(phase: Phase) -> Status {
    match phase {
        Phase::Prestart | Phase::CreateRuntime | Phase::CreateContainer => Status::Creating,
        Phase::StartContainer => Status::Created,
        Phase::Poststart => Status::Running,
        Phase::Poststop => Status::Stopped,
    }
}

/// runc's words (`error running <phase> hook #<n>:`, n from 0), then the hook's path and what happened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("error running {phase} hook #{index}: {path}: {reason}")]
    Failed {
        phase: &'static str,
        index: usize,
        path: String,
        reason: String,
    },
}

/// Running the translated hooks (the type is config's; its methods that run hooks live here, by the process
/// code they need).
impl Hooks {
    /// Runs a phase's hooks in order; the first failure stops the phase and is returned.
    pub fn run_phase(&self, phase: Phase, state: &OciState) -> Result<(), Error> {
        self.run_in(phase, state, &Inherit::default())
    }

    /// createContainer, run by the init in the container's namespaces before pivot_root: as runc, in the rootfs,
    /// and a hook without `env` gets the process's environment (runc's init has it by then).
    pub fn create_container(
        &self,
        state: &OciState,
        process: &crate::config::Process,
        rootfs: &std::path::Path,
    ) -> Result<(), Error> {
        let inherit = Inherit {
            env: Some(process.env.clone()),
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
        state.status = status(phase);
        let json = serde_json::to_vec(&state).expect("state serialises");
        for (index, hook) in hooks.iter().enumerate() {
            run_one(phase, index, hook, &json, inherit)?;
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
        state.status = status(phase);
        let json = serde_json::to_vec(&state).expect("state serialises");
        hooks
            .iter()
            .enumerate()
            .filter_map(|(i, hook)| run_one(phase, i, hook, &json, &Inherit::default()).err())
            .collect()
    }
}

/// What a hook gets when its config says nothing: the environment (none by default) and the cwd (berth's).
#[derive(Default)]
struct Inherit {
    env: Option<Vec<String>>,
    cwd: Option<std::path::PathBuf>,
}

/// Runs one hook. As runc, its stdout and stderr are captured, never passed on: a hook run by the init would
/// otherwise write into the container's output (or a relayed terminal torn down on the failure); a failure
/// carries both, on one line.
fn run_one(
    phase: Phase,
    index: usize,
    hook: &Hook,
    state: &[u8],
    inherit: &Inherit,
) -> Result<(), Error> {
    let path = hook.path.display().to_string();
    let fail = |reason: String| Error::Failed {
        phase: phase.name(),
        index,
        path: path.clone(),
        reason,
    };
    let mut cmd = Command::new(&hook.path);
    if let Some((first, rest)) = hook.args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    let env = hook.env.as_ref().or(inherit.env.as_ref());
    for kv in env.iter().copied().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    if let Some(dir) = &inherit.cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("spawn: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state);
    }
    let timeout = hook.timeout;
    let pidfd = crate::sys::pidfd_open(nix::unistd::Pid::from_raw(child.id() as i32))
        .map_err(|e| fail(format!("pidfd_open: {e}")))?;
    let (mut out, mut err) = (Captured::default(), Captured::default());
    let pipes = [
        child.stdout.take().map(|p| File::from(OwnedFd::from(p))),
        child.stderr.take().map(|p| File::from(OwnedFd::from(p))),
    ];
    let exited = collect_until_exit(
        &pidfd,
        pipes,
        [&mut out, &mut err],
        timeout.map(|t| Instant::now() + t),
    );
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        let t = timeout.unwrap_or_default();
        return Err(fail(format!(
            "hook ran past specified timeout of {:.1}s",
            t.as_secs_f64()
        )));
    }
    let status = child.wait().map_err(|e| fail(format!("wait: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("signal: {}", signal_name(s)),
        _ => "failed".into(),
    };
    Err(fail(format!(
        "{how}, stdout: {}, stderr: {}",
        out.one_line(),
        err.one_line()
    )))
}

/// A signal as Go's exec error names it (`signal: bad system call`): runc's hook errors read so, and runc's suite
/// matches the words.
fn signal_name(s: i32) -> String {
    let words = match s {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        libc::SIGXCPU => "CPU time limit exceeded",
        libc::SIGXFSZ => "file size limit exceeded",
        libc::SIGSYS => "bad system call",
        _ => return format!("signal {s}"),
    };
    words.to_string()
}

/// What a hook wrote on one stream, up to a bound (the rest is read and dropped).
#[derive(Default)]
struct Captured(Vec<u8>);

impl Captured {
    const KEEP: usize = 16 * 1024;

    fn push(&mut self, b: &[u8]) {
        let room = Self::KEEP.saturating_sub(self.0.len());
        self.0.extend_from_slice(&b[..b.len().min(room)]);
    }

    /// The text on one line: trailing newlines dropped, inner ones written as `\n`.
    fn one_line(&self) -> String {
        String::from_utf8_lossy(&self.0)
            .trim_end()
            .replace('\n', "\\n")
    }
}

/// Reads the hook's pipes until it exits (its pidfd turns readable), then takes what is left in them without
/// waiting for their other ends (a process the hook left behind may hold them). False if `deadline` came first.
fn collect_until_exit(
    pidfd: &OwnedFd,
    mut pipes: [Option<File>; 2],
    bufs: [&mut Captured; 2],
    deadline: Option<Instant>,
) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        let ms = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let mut which = Vec::new();
        for (i, p) in pipes.iter().enumerate() {
            if let Some(p) = p {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        match poll(&mut fds, ms) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(0) => return false,
            Err(_) => return false,
            Ok(_) => {}
        }
        let exited = fds[0].any().unwrap_or(false);
        let ready: Vec<usize> = fds[1..]
            .iter()
            .zip(&which)
            .filter(|(f, _)| f.any().unwrap_or(false))
            .map(|(_, i)| *i)
            .collect();
        for i in ready {
            match pipes[i].as_mut().map(|p| p.read(&mut chunk)) {
                Some(Ok(0)) | Some(Err(_)) => pipes[i] = None,
                Some(Ok(n)) => bufs[i].push(&chunk[..n]),
                None => {}
            }
        }
        if exited {
            for (i, p) in pipes.iter_mut().enumerate() {
                let Some(p) = p else { continue };
                let _ = nix::fcntl::fcntl(
                    std::os::fd::AsRawFd::as_raw_fd(p),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                // What is already there, and no more than a buffer's worth: a process the hook left behind that
                // keeps writing must not keep us reading.
                for _ in 0..Captured::KEEP / chunk.len() + 1 {
                    match p.read(&mut chunk) {
                        Ok(n) if n > 0 => bufs[i].push(&chunk[..n]),
                        _ => break,
                    }
                }
            }
            return true;
        }
    }
}
