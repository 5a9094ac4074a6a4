//! linux.seccomp: compiled to BPF once in `create` before the clone ([`compile`]), loaded by the init as late as
//! possible ([`Filter::load`]). For SCMP_ACT_NOTIFY the notify fd goes to `listenerPath` with the container process
//! state, as runc sends it: one message carrying the JSON and the fd (SCM_RIGHTS) on a connection that `create`
//! opens on the host before the clone (so the path is the host's, whatever the container's mounts), which the init
//! inherits and uses the moment the kernel hands it the fd. `exec` does the same for its process: the connection is
//! made on the host before the clone, and the listener gets a notify fd of its own for the exec'd process.

pub mod compile;
#[cfg(test)]
mod differential;
mod tables;

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::LinuxSeccomp;
use serde::Serialize;

use crate::oci_state::OciState;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Compile(#[from] compile::Error),
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}): {source}{hint}")]
    Load {
        flags: u32,
        source: nix::Error,
        hint: &'static str,
    },
    #[error("seccomp: failed to connect with seccomp agent at listenerPath {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seccomp: send the notify fd to listenerPath {path}: {source}")]
    Send { path: PathBuf, source: nix::Error },
}

/// A filter compiled before the init forks (so compile errors fail `create` early and no work is done twice).
pub struct Filter {
    program: compile::Program,
    listener_path: Option<PathBuf>,
    metadata: String,
}

pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, Error> {
    let program = compile::compile(seccomp)?;
    // runc's debug line (its suite reads the number): the flags seccomp(2) will get.
    crate::logging::debug(&format!("seccomp filter flags: {}", program.flags));
    Ok(Filter {
        program,
        listener_path: seccomp.listener_path().clone(),
        metadata: seccomp.listener_metadata().clone().unwrap_or_default(),
    })
}

/// runc's (and the runtime spec's) "container process state" sent with the notify fd.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessState<'a> {
    oci_version: &'a str,
    fds: [&'static str; 1],
    pid: i32,
    metadata: &'a str,
    state: &'a OciState,
}

impl Filter {
    /// The listener `create` must connect to before the clone, when a rule notifies.
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path
            .as_deref()
            .filter(|_| self.program.notify)
    }

    /// Connects to the listener (in `create`, on the host, before the clone). Close-on-exec.
    pub fn connect_listener(&self) -> Result<Option<UnixStream>, Error> {
        let Some(path) = self.listener_path() else {
            return Ok(None);
        };
        UnixStream::connect(path)
            .map(Some)
            .map_err(|source| Error::Connect {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Whether the filter lets this native (x86_64) call through as it is (ALLOW or LOG), judged by running the
    /// compiled program here.
    pub fn lets_through(&self, syscall: &str, args: [u64; 6]) -> bool {
        let Some(nr) = compile::Abi::X86_64.number(syscall) else {
            return false;
        };
        const ACTION: u32 = 0xffff_0000;
        matches!(
            self.program
                .evaluate(compile::AUDIT_ARCH_X86_64, nr, args)
                .map(|r| r & ACTION),
            Some(compile::RET_ALLOW | compile::RET_LOG)
        )
    }

    /// Installs the filter on the calling (single-threaded) process; with a notify rule, sends the notify fd,
    /// `state` and `pid` (the process's host pid: for `exec` not the init's `state.pid`, as runc does) over
    /// `listener` and closes the fd here.
    pub fn load_for(
        &self,
        listener: Option<&UnixStream>,
        state: &OciState,
        pid: i32,
    ) -> Result<(), Error> {
        let flags = self.program.flags;
        let notify_fd =
            crate::sys::seccomp_set_mode_filter(&self.program.insns, flags).map_err(|source| {
                let hint = match source {
                    nix::errno::Errno::EINVAL => {
                        " (a flag or action this kernel does not support?)"
                    }
                    nix::errno::Errno::EACCES => " (needs CAP_SYS_ADMIN or noNewPrivileges)",
                    _ => "",
                };
                Error::Load {
                    flags,
                    source,
                    hint,
                }
            })?;
        let (Some(fd), Some(sock)) = (notify_fd, listener) else {
            return Ok(());
        };
        let path = self.listener_path.clone().unwrap_or_default();
        let msg = serde_json::to_vec(&ProcessState {
            oci_version: &state.oci_version,
            fds: ["seccompFd"],
            pid,
            metadata: &self.metadata,
            state,
        })
        .expect("plain data serialises");
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            sock.as_fd().as_raw_fd(),
            &[IoSlice::new(&msg)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(|source| Error::Send { path, source })?;
        Ok(())
    }
}

/// The seccomp part of `berth features`, derived from what the compiler accepts: every action it can return, every
/// operator, the x86 ABIs it has syscall tables for, and the filter flags it passes to the kernel.
pub fn features() -> serde_json::Value {
    use oci_spec::runtime::{LinuxSeccompAction as A, LinuxSeccompOperator as O};
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let actions: Vec<String> = [
        A::ScmpActKill,
        A::ScmpActKillProcess,
        A::ScmpActKillThread,
        A::ScmpActTrap,
        A::ScmpActErrno,
        A::ScmpActTrace,
        A::ScmpActAllow,
        A::ScmpActLog,
        A::ScmpActNotify,
    ]
    .into_iter()
    .filter(|a| compile::action_value(*a, None, "features").is_ok())
    .map(|a| name(serde_json::to_value(a).unwrap_or_default()))
    .collect();
    let operators: Vec<String> = [
        O::ScmpCmpNe,
        O::ScmpCmpLt,
        O::ScmpCmpLe,
        O::ScmpCmpEq,
        O::ScmpCmpGe,
        O::ScmpCmpGt,
        O::ScmpCmpMaskedEq,
    ]
    .into_iter()
    .map(|o| name(serde_json::to_value(o).unwrap_or_default()))
    .collect();
    let flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
    serde_json::json!({
        "enabled": true,
        "actions": actions,
        "operators": operators,
        "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "knownFlags": flags,
        "supportedFlags": flags,
    })
}
