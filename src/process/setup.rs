//! Becoming the container's process: the steps the init (`init.rs`) and `exec` (`exec_into.rs`) share, in one
//! order, so that a fix to one is a fix to both. Both run them in the container's namespaces and root:
//!
//! 1. [`Setup::sweep_fds`]: every descriptor but stdio and the preserved ones (3 .. 3+N) becomes close-on-exec,
//!    before any chdir and before a seccomp filter could forbid close_range;
//! 2. [`Setup::enter_cwd`]: the cwd, resolved inside the container's root without magic links (CVE-2024-21626);
//! 3. [`Setup::lsm`]: the AppArmor profile / SELinux label for the next execve, while still root;
//! 4. [`Setup::rlimits`];
//! 5. [`Setup::stub`]: the sealed exec stub, made while berth may still make it (before seccomp and the uid
//!    switch);
//! 6. [`Setup::credentials`]: seccomp without noNewPrivileges (loading it needs CAP_SYS_ADMIN), bounding set, ids
//!    (every error checked), the other capability sets, no_new_privs, umask;
//! 7. [`Setup::program`]: the program looked up (and HOME read) as the user, with its final capabilities, as runc
//!    does, so a lookup reaches nothing the program itself could not;
//! 8. [`Setup::seccomp_with_nnp`]: with noNewPrivileges the filter loads last, just before execve (the init runs its
//!    startContainer hooks before it);
//! 9. [`exec`]: execve, through the stub.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::exec::Program;
use super::exec_stub::Stub;
use super::seccomp::Filter;
use crate::config::Process;
use crate::oci_state::OciState;
use anyhow::{Context, Result};

/// What both the init and exec know about the process they become.
pub struct Setup<'a> {
    pub process: &'a Process,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a Filter>,
    /// The connection to linux.seccomp.listenerPath (SCMP_ACT_NOTIFY only).
    pub seccomp_listener: Option<&'a UnixStream>,
}

impl Setup<'_> {
    fn nnp(&self) -> bool {
        self.process.no_new_privileges
    }

    /// Step 1: only fds 0-2 and the preserved ones survive execve; from here on everything opened is close-on-exec.
    pub fn sweep_fds(&self) -> Result<()> {
        let first = preserved_end(self.preserve_fds)?;
        crate::sys::cloexec_fds_from(first).context("close_range(CLOEXEC)")?;
        for fd in 3..first {
            crate::sys::clear_cloexec(fd).with_context(|| format!("keep preserved fd {fd}"))?;
        }
        Ok(())
    }

    /// Step 1, the init's part: besides the sweep, every descriptor above stdio and the preserved ones but `keep`
    /// (the init's own sockets, all close-on-exec) is closed now, so a created container holds nothing of its
    /// caller's until `start` (exec's process execs at once: the sweep is enough there).
    pub fn close_unkept(&self, keep: &[RawFd]) -> Result<()> {
        let first = preserved_end(self.preserve_fds)?;
        crate::sys::close_fds_from_except(first, keep).context("close_range")
    }

    /// Step 2: the cwd, resolved inside the root (no magic links such as /proc/self/fd/N and no `..` above the
    /// root, so no descriptor of berth nor a host directory can become the cwd).
    pub fn enter_cwd(&self) -> Result<()> {
        let cwd = &self.process.cwd;
        let root = crate::resolve::Root::open(Path::new("/")).context("open /")?;
        let dir = root
            .open_in_root(cwd, nix::fcntl::OFlag::O_DIRECTORY)
            .with_context(|| format!("cwd {}", cwd.display()))?;
        nix::unistd::fchdir(dir.as_raw_fd())
            .with_context(|| format!("chdir to cwd {}", cwd.display()))
    }

    /// Step 3: the LSM attributes for the next execve, while still root (our non-dumpable /proc files are root's).
    pub fn lsm(&self) -> Result<()> {
        let p = self.process;
        crate::lsm::apply_on_exec(p.apparmor_profile.as_deref(), p.selinux_label.as_deref())?;
        Ok(())
    }

    /// Step 4.
    pub fn rlimits(&self) -> Result<()> {
        Ok(super::rlimits::apply(&self.process.rlimits)?)
    }

    /// Step 5: the sealed stub for the last execve, where it fits.
    pub fn stub(&self) -> Option<Stub> {
        Stub::for_process(self.process, self.seccomp)
    }

    /// Step 6: seccomp (without noNewPrivileges), bounding set, ids, capabilities, no_new_privs, umask. `state`
    /// and `pid` are what a seccomp listener is told. Returns warnings for berth's caller (ambient capabilities the
    /// kernel refused, as runc goes on without them).
    pub fn credentials(&self, state: &OciState, pid: i32) -> Result<Vec<String>> {
        let p = self.process;
        let caps = super::caps::CapSets::for_kernel(&p.capabilities);
        if !self.nnp() {
            // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have it (runc too).
            if let Some(f) = self.seccomp {
                f.load_for(self.seccomp_listener, state, pid)?;
            }
        }
        caps.drop_bounding()?;
        super::identity::switch(&p.user, setgroups_allowed())?;
        let warnings = caps.apply_after_setuid()?;
        if self.nnp() {
            nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
        }
        crate::sys::set_umask(p.user.umask);
        Ok(warnings)
    }

    /// Step 7: the program, looked up as the user.
    pub fn program(&self) -> Result<Program> {
        let p = self.process;
        let path = super::exec::find_program(&p.args[0], &p.env, &p.cwd)?;
        Ok(super::exec::prepare(path, &p.args, &p.env, p.user.uid)?)
    }

    /// Step 8: with noNewPrivileges, the filter is the last thing loaded before execve.
    pub fn seccomp_with_nnp(&self, state: &OciState, pid: i32) -> Result<()> {
        if self.nnp() {
            if let Some(f) = self.seccomp {
                f.load_for(self.seccomp_listener, state, pid)?;
            }
        }
        Ok(())
    }
}

/// Step 9: execve through the stub; `report_fd` (close-on-exec) sees EOF when it succeeded. Returns the error text
/// otherwise.
pub fn exec(program: &Program, stub: Option<&Stub>, report_fd: RawFd) -> String {
    let errno = program.exec(stub, report_fd);
    super::exec::exec_failure(&program.path.to_string_lossy(), errno)
}

/// 3 + N: the first descriptor that is not kept. N was bounded by the caller's descriptors (commands); checked
/// anyway, since a wrapped sum would keep every descriptor.
pub fn preserved_end(preserve_fds: u32) -> Result<RawFd> {
    i32::try_from(preserve_fds)
        .ok()
        .and_then(|n| n.checked_add(3))
        .with_context(|| format!("--preserve-fds {preserve_fds}: out of range"))
}

/// Becomes root of a joined or new user namespace (if mapped) for the setup that follows: files made on
/// filesystems mounted inside it need an id mapped there. Errors are errors: going on with the host's ids in the
/// container's user namespace would set the container up as an unmapped user.
pub fn become_userns_root() -> Result<()> {
    nix::unistd::setresgid(0.into(), 0.into(), 0.into())
        .context("setresgid 0 in the user namespace")?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into())
        .context("setresuid 0 in the user namespace")?;
    // Changing ids may make us dumpable again (fs.suid_dumpable): nothing in the container may ptrace us or open
    // /proc/<pid>/exe while we set up.
    crate::sys::set_not_dumpable().context("prctl(PR_SET_DUMPABLE, 0)")
}

/// In a user namespace whose setgroups is "deny", setgroups(2) fails; read it rather than guess.
fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// The first act of the init and of exec's process: an empty signal mask and default SIGPIPE (Rust ignores it; that would leak into the
/// container program through execve).
pub fn reset_signals_for_container() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )?;
    crate::sys::default_sigpipe()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preserved_range_never_wraps() {
        assert_eq!(preserved_end(0).unwrap(), 3);
        assert_eq!(preserved_end(2).unwrap(), 5);
        assert!(preserved_end(i32::MAX as u32).is_err());
        assert!(preserved_end(u32::MAX).is_err());
        assert_eq!(preserved_end(i32::MAX as u32 - 3).unwrap(), i32::MAX);
    }
}
