//! `linux.seccomp`, carried out: the program `config` compiled at load is loaded by the init as late as possible
//! ([`Filter::load_for`]). For SCMP_ACT_NOTIFY the notify fd goes to `listenerPath` with the container process
//! state, as runc sends it: one message carrying the JSON and the fd (SCM_RIGHTS) on a connection that `create`
//! opens on the host before the clone (so the path is the host's, whatever the container's mounts), which the init
//! inherits and uses the moment the kernel hands it the fd. `exec` does the same for its process: the connection is
//! made on the host before the clone, and the listener gets a notify fd of its own for the exec'd process.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde::Serialize;

use crate::oci_state::OciState;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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

/// The compiled filter (`config::seccomp`); its kernel side is implemented here.
pub type Filter = crate::config::seccomp::Seccomp;

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

/// Loading into the kernel and the listener: the parts of a filter that need it.
impl Filter {
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
        let path = self
            .listener_path()
            .map(Path::to_path_buf)
            .unwrap_or_default();
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
