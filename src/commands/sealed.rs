//! The one re-execution of berth: `create`, `run` and `exec` make processes a container can see (the init before
//! `start`, exec's child), and such a process is berth's binary until its last `execve`. So that nothing holding
//! CAP_SYS_PTRACE in a container can keep `/proc/<pid>/exe` and later write through it to the host's binary
//! (CVE-2019-5736), these commands first re-execute berth from a read-only view of its own binary:
//!
//! 1. a detached, read-only (nosuid, nodev) bind mount of the binary: `open_tree(OPEN_TREE_CLONE)` of
//!    /proc/self/exe, `mount_setattr`, `execveat(fd, "", AT_EMPTY_PATH)`. No copy, and the mount is in no mount
//!    table (nothing to clean up, no mount events); it lives as long as a process executes from it. Reopening the
//!    exe of such a process for writing fails with EROFS.
//! 2. where that fails (no CAP_SYS_ADMIN over our mount namespace, kernel < 5.12): a sealed memfd copy (no write,
//!    grow, shrink or further seal).
//!
//! Whether berth already runs from such a view is read from the kernel, not from the environment: /proc/self/exe on
//! a read-only mount, or a memfd with those seals. (A berth installed on a read-only filesystem is therefore never
//! re-executed: the container cannot make the host's mount writable.) `BERTH_SEALED_EXE` only stops a loop should
//! the kernel ever disagree with itself; it is removed at once so that nothing berth starts inherits it.
//!
//! The re-exec happens before any other work, and changes nothing the command sees: argv and the environment are
//! passed as they are, every descriptor not close-on-exec survives execve with its number (berth's own descriptors
//! here are all close-on-exec), and the pid stays (so `--pid-file`, the console socket and the caller's wait work
//! as before).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

use crate::cli::Command;
use crate::sys;

const MARKER: &str = "BERTH_SEALED_EXE";

/// Seals required of a memfd copy for it to count as sealed.
const REQUIRED_SEALS: i32 =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Does `command` start a process a container can see?
pub fn needed_for(command: &Command) -> bool {
    matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    )
}

/// Re-executes berth from a read-only view of its binary unless it already runs from one. Returns only when no
/// re-exec was needed; any failure is an error (berth does not go on with a writable binary).
pub fn ensure() -> Result<()> {
    let came_back = std::env::var_os(MARKER).is_some();
    if came_back {
        std::env::remove_var(MARKER);
    }
    let exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    if is_sealed(exe.as_fd()).context("fstatvfs /proc/self/exe")? {
        return Ok(());
    }
    if came_back {
        bail!("re-executed from a sealed view of berth's binary, but /proc/self/exe is neither read-only nor sealed");
    }
    let mut argv: Vec<CString> = Vec::new();
    for a in std::env::args_os() {
        argv.push(CString::new(a.as_bytes()).context("argument with a NUL byte")?);
    }
    let mut envp: Vec<CString> = Vec::new();
    for (k, v) in std::env::vars_os() {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(CString::new(kv).context("environment variable with a NUL byte")?);
    }
    envp.push(CString::new(format!("{MARKER}=1")).expect("no NUL"));
    let argv: Vec<&std::ffi::CStr> = argv.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = envp.iter().map(|e| e.as_c_str()).collect();

    let mount_err = match read_only_view() {
        Ok(view) => sys::execveat_fd(view.as_fd(), &argv, &envp),
        Err(e) => e,
    };
    let memfd_err = match sealed_copy(exe) {
        Ok(copy) => sys::execveat_fd(copy.as_fd(), &argv, &envp),
        Err(e) => e,
    };
    bail!(
        "cannot run berth from a sealed view of its binary: read-only mount: {}; sealed memfd copy: {}",
        mount_err.desc(),
        memfd_err.desc()
    )
}

/// /proc/self/exe on a read-only mount, or a memfd sealed against writes.
fn is_sealed(exe: std::os::fd::BorrowedFd<'_>) -> nix::Result<bool> {
    let st = nix::sys::statvfs::fstatvfs(exe)?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    // EINVAL: not a file that takes seals (not a memfd).
    let seals = nix::fcntl::fcntl(exe.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap_or(0);
    Ok(seals & REQUIRED_SEALS == REQUIRED_SEALS)
}

/// A detached, read-only, nosuid, nodev bind mount of berth's binary.
fn read_only_view() -> nix::Result<OwnedFd> {
    let view = sys::open_tree_clone(c"/proc/self/exe", false)?;
    let attr = sys::MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        ..Default::default()
    };
    sys::mount_setattr(view.as_fd(), false, &attr)?;
    Ok(view)
}

/// A sealed memfd holding a copy of berth's binary.
fn sealed_copy(exe: std::fs::File) -> nix::Result<OwnedFd> {
    let memfd = sys::memfd_executable(c"berth")?;
    let mut dst = std::fs::File::from(memfd);
    let mut src = exe;
    std::io::copy(&mut src, &mut dst)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let memfd = OwnedFd::from(dst);
    sys::seal_memfd(memfd.as_fd())?;
    Ok(memfd)
}
