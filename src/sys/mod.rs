//! The few raw syscalls that nix does not wrap. Every `unsafe` block of berth that is not a plain libc call with
//! pointer-free arguments lives here, each with a `SAFETY:` note, behind a safe function returning `nix::Result`.

pub mod bpf;

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// `struct clone_args` from linux/sched.h (v2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Result of [`clone3_fork`]: which side of the fork we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork-like clone3: the child continues on a copy of the caller's stack, created directly in the namespaces named by
/// `flags` and, when `cgroup` is given (cgroup v2), directly in that cgroup. SIGCHLD is delivered on exit.
pub fn clone3_fork(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> nix::Result<Forked> {
    // SAFETY: berth has one thread, always: `make lint` (scripts/check-layers.sh) fails on any use of std::thread
    // but sleep, and none of berth's dependencies starts a thread.
    unsafe { clone3(flags, cgroup) }
}

/// clone3 without a stack, as fork.
///
/// # Safety
///
/// The calling process must have a single thread: the child is a copy of the calling thread alone, and a lock
/// another thread held at the clone (the allocator's, stdio's) would stay held forever in the child, which uses
/// them freely.
unsafe fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> nix::Result<Forked> {
    // With CLONE_PARENT the kernel wants exit_signal 0: the child inherits the caller's (SIGCHLD for berth's own).
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without a stack behaves like fork(): the child gets a copy of this (single-threaded) process's
    // memory. `args` is a valid, fully initialised clone_args that lives across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// pidfd_open(2): a handle on a process that cannot be confused with a later process reusing its pid.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; on success the kernel returns a new fd that we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `ret` is a freshly opened fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// pidfd_send_signal(2) without siginfo.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> nix::Result<()> {
    // SAFETY: integer arguments and a null siginfo pointer, which the syscall accepts.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// execve(2) with already-built C strings; returns only on failure.
pub fn execve(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: both arrays are null-terminated and point into CStrs that outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    Errno::last()
}

/// An anonymous, sealable, close-on-exec memfd that may be executed. MFD_EXEC (Linux 6.3) is asked for explicitly
/// because a host with vm.memfd_noexec=1 would otherwise make it non-executable; older kernels reject the flag with
/// EINVAL and make every memfd executable, so the call is retried without it.
pub fn memfd_executable(name: &CStr) -> nix::Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    for flags in [base | MFD_EXEC, base] {
        // SAFETY: `name` is a valid C string; the returned fd is fresh and owned here.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        match Errno::result(fd) {
            // SAFETY: memfd_create has just returned `fd`.
            Ok(fd) => return Ok(unsafe { own_new_fd(fd) }),
            Err(Errno::EINVAL) if flags & MFD_EXEC != 0 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EINVAL)
}

/// Seals a memfd for good: no write, resize or further seal (and, where the kernel knows F_SEAL_EXEC, no chmod of
/// its exec bits).
pub fn seal_memfd(fd: BorrowedFd<'_>) -> nix::Result<()> {
    const F_SEAL_EXEC: libc::c_int = 0x20;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: integer-only fcntl on a descriptor we borrow.
    let with_exec = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals | F_SEAL_EXEC) };
    if Errno::result(with_exec).is_ok() {
        return Ok(());
    }
    // SAFETY: as above.
    Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): executes the file behind `fd`; returns only on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: the path is an empty C string, both arrays are null-terminated and point into CStrs that outlive the
    // call; `fd` is borrowed for its duration.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}

/// Sets FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

/// Marks every fd from `first` upwards close-on-exec (so that only what we keep survives execve).
pub fn cloexec_fds_from(first: RawFd) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: only sets FD_CLOEXEC on a range of descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as u32,
            u32::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// Closes every fd from `first` upwards except those in `keep`.
pub fn close_fds_from_except(first: RawFd, keep: &[RawFd]) -> nix::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&k| k >= first).collect();
    keep.sort_unstable();
    let mut lo = first as u32;
    for hi in keep.iter().map(|&k| k as u32).chain([u32::MAX]) {
        if hi > lo {
            let last = if hi == u32::MAX { u32::MAX } else { hi - 1 };
            // SAFETY: closes a range of descriptors none of which is owned by live Rust objects but `keep`'s.
            Errno::result(unsafe { libc::syscall(libc::SYS_close_range, lo, last, 0u32) })?;
        }
        lo = hi.saturating_add(1);
    }
    Ok(())
}

/// PR_CAP_AMBIENT_RAISE of one capability (the kernel refuses one that is not both permitted and inheritable).
pub fn ambient_raise(cap: u8) -> nix::Result<()> {
    // SAFETY: integer-only prctl.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE,
            libc::c_ulong::from(cap),
            0,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// prctl(PR_SET_DUMPABLE, 0): no /proc/self/exe or ptrace handle on berth for container processes.
pub fn set_not_dumpable() -> nix::Result<()> {
    // SAFETY: integer-only prctl.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
}

/// Joins a new session keyring named after the container, so the container does not share the caller's keys.
pub fn join_session_keyring(name: &CStr) -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: keyctl with a valid NUL-terminated name pointer that outlives the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// capset(2) of the calling thread: effective, permitted and inheritable (64-bit masks) in one call, so the
/// kernel checks the new sets against the old ones together (set one by one, an inheritable capability outside
/// the new permitted set would be refused).
pub fn capset_all(effective: u64, permitted: u64, inheritable: u64) -> nix::Result<()> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
    let data: [Data; 2] = [false, true].map(|hi| Data {
        effective: half(effective, hi),
        permitted: half(permitted, hi),
        inheritable: half(inheritable, hi),
    });
    // SAFETY: capset reads one header and two data structs (version 3), both valid for the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Is `fd` on a filesystem with the given magic (e.g. PROC_SUPER_MAGIC)?
pub fn fs_magic(fd: BorrowedFd<'_>) -> nix::Result<i64> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    Ok(st.filesystem_type().0 as i64)
}

/// Is `path` the root of (or inside) a cgroup2 filesystem?
pub fn is_cgroup2(path: &std::path::Path) -> nix::Result<bool> {
    let st = nix::sys::statfs::statfs(path)?;
    Ok(st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// setdomainname(2) (nix wraps only sethostname).
pub fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// setrlimit(2) for a raw resource number.
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> nix::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit that lives across the call.
    let ret = unsafe { libc::setrlimit(resource as _, &lim) };
    Errno::result(ret).map(drop)
}

/// umask(2); returns nothing since berth never needs the old mask.
pub fn set_umask(mask: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Clears FD_CLOEXEC on `fd` so that it survives execve (for --preserve-fds and the terminal).
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
}

/// Owns a descriptor a successful open-like call has just returned (nix 0.29 still returns raw fds).
///
/// # Safety
///
/// `fd` must be a descriptor this process has just been given by the kernel and that nothing else owns or will
/// close.
unsafe fn own_new_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller guarantees `fd` is fresh and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// open(2), the descriptor owned.
pub fn open<P: ?Sized + nix::NixPath>(
    path: &P,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(path, flags, mode)?;
    // SAFETY: open has just returned `fd`.
    Ok(unsafe { own_new_fd(fd) })
}

/// accept4(SOCK_CLOEXEC): the next connection on a listening socket, owned.
pub fn accept_cloexec(listener: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let fd = nix::sys::socket::accept4(
        listener.as_raw_fd(),
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )?;
    // SAFETY: accept4 has just returned `fd`.
    Ok(unsafe { own_new_fd(fd) })
}

/// openat(2) relative to `dir`, the descriptor owned.
pub fn openat<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd<'_>,
    path: &P,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), path, flags, mode)?;
    // SAFETY: openat has just returned `fd`.
    Ok(unsafe { own_new_fd(fd) })
}

/// openat2(2) relative to `dir`, the descriptor owned.
pub fn openat2<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd<'_>,
    path: &P,
    how: nix::fcntl::OpenHow,
) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::openat2(dir.as_raw_fd(), path, how)?;
    // SAFETY: openat2 has just returned `fd`.
    Ok(unsafe { own_new_fd(fd) })
}

/// fcntl(F_DUPFD_CLOEXEC): a close-on-exec duplicate of `fd` numbered `min` or above.
pub fn dup_cloexec_from(fd: BorrowedFd<'_>, min: RawFd) -> nix::Result<OwnedFd> {
    let dup = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) has just returned `dup`, a new descriptor.
    Ok(unsafe { own_new_fd(dup) })
}

/// A pty master as a plain owned descriptor (nix's `PtyMaster` converts only to a raw fd).
pub fn pty_master_fd(master: nix::pty::PtyMaster) -> OwnedFd {
    use std::os::fd::IntoRawFd;
    // SAFETY: `PtyMaster` owned the descriptor; into_raw_fd hands that ownership over without closing it.
    unsafe { own_new_fd(master.into_raw_fd()) }
}

/// recvmsg(2) of one message into `buf`, with the descriptors it carries (SCM_RIGHTS, at most `MAX_RECV_FDS`, the
/// rest dropped by the kernel) owned and close-on-exec. Returns the byte count (0: the peer closed).
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; MAX_RECV_FDS]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: SCM_RIGHTS descriptors are installed in this process by this recvmsg and owned by nobody.
            fds.extend(raw.into_iter().map(|fd| unsafe { own_new_fd(fd) }));
        }
    }
    Ok((msg.bytes, fds))
}

/// The descriptors one [`recv_with_fds`] takes: berth's messages carry one.
pub const MAX_RECV_FDS: usize = 1;

/// Makes SIGHUP, SIGINT, SIGQUIT and SIGTERM end the calling process (exit status 128+N) through a handler. A pid
/// namespace's init gets no signal whose action is the default, except SIGKILL and SIGSTOP from an ancestor
/// namespace: a created container's init, waiting for `start`, would otherwise outlive a `kill TERM` that runc's
/// (Go's runtime handles these signals by exiting) does not. execve resets the handler to the default.
pub fn exit_on_termination_signals() -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    extern "C" fn die(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe and touches no state of the interrupted code.
        unsafe { libc::_exit(128 + sig) }
    }
    let action = SigAction::new(SigHandler::Handler(die), SaFlags::empty(), SigSet::empty());
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
    ] {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Restores SIGPIPE's default action (the Rust runtime sets it to ignored, which execve would pass on).
pub fn default_sigpipe() -> nix::Result<()> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: installing SIG_DFL runs no handler code, so no async-signal-safety concern arises.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map(drop)
}

/// Makes `fd` (a pty slave) the controlling terminal of a new session.
pub fn take_controlling_tty(fd: RawFd) -> nix::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an integer argument; `fd` is an open descriptor.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }).map(drop)
}

/// `struct mount_attr` from linux/mount.h.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// The mask of the three atime modes below (relatime is 0).
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH), recursively when `recursive`.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> nix::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: an empty NUL-terminated path, a valid fd, and a pointer to a fully initialised mount_attr of the
    // size we pass; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount (tree, when `recursive`) at `path`.
pub fn open_tree_clone(path: &CStr, recursive: bool) -> nix::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid NUL-terminated path that outlives the call and integer flags.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the syscall has just returned `ret`, a new descriptor.
    Ok(unsafe { own_new_fd(ret as RawFd) })
}

/// move_mount(2) of the detached mount `from` onto the object `to` refers to (both by fd, AT_EMPTY_PATH).
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: two valid fds, empty NUL-terminated paths and integer flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// Forks a child that does nothing but wait to be killed (and dies with its parent), created with the namespace
/// `flags` (e.g. CLONE_NEWUSER, to get a user namespace whose maps the caller then writes). The caller kills and
/// reaps it.
pub fn fork_idle_child(flags: u64) -> nix::Result<Pid> {
    match clone3_fork(flags, None)? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            // SAFETY: integer-only prctl, then pause() in a loop and _exit: no allocation, no locks.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                loop {
                    libc::pause();
                }
            }
        }
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): installs a classic BPF filter on the calling thread. With
/// SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the notify fd, which is returned here.
pub fn seccomp_set_mode_filter(
    insns: &[libc::sock_filter],
    flags: u32,
) -> nix::Result<Option<OwnedFd>> {
    let len = u16::try_from(insns.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `insns`, which outlives the call; the kernel copies the program and only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 != 0 {
        // SAFETY: with NEW_LISTENER a successful call returns a fresh notify fd (close-on-exec) owned by nobody else.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    Ok(None)
}

/// ioctl(TIOCGPTPEER): opens the slave of a pty master without a path lookup (so nothing in the container can
/// swap /dev/pts/N under us).
pub fn open_pty_peer(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer argument and returns a new fd that we own.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), TIOCGPTPEER as _, flags) };
    let fd = Errno::result(ret)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// ioctl(TIOCGWINSZ): a terminal's window size (rows, columns and pixels).
pub fn window_size(fd: BorrowedFd<'_>) -> nix::Result<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid, writable winsize that lives across the call; the kernel fills it.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    Errno::result(ret).map(|_| ws)
}

/// ioctl(TIOCSWINSZ) with a whole winsize (pixels included), as copied from another terminal.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: `ws` is a valid winsize that lives across the call; the kernel only reads it.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const libc::winsize) };
    Errno::result(ret).map(drop)
}

/// ioctl(TIOCSWINSZ): sets a terminal's window size.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize that lives across the call; the kernel only reads it.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    Errno::result(ret).map(drop)
}

/// fsopen(2): a filesystem context for `fstype` (the new mount API), configured with [`fsconfig_string`] /
/// [`fsconfig_flag`], then [`fsconfig_create`] and [`fsmount`].
pub fn fsopen(fstype: &CStr) -> nix::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    // SAFETY: a valid NUL-terminated name that outlives the call; the returned fd is fresh and owned here.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the syscall has just returned `ret`, a new descriptor.
    Ok(unsafe { own_new_fd(ret as RawFd) })
}

const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn fsconfig(
    fs: BorrowedFd<'_>,
    cmd: libc::c_uint,
    key: Option<&CStr>,
    value: Option<&CStr>,
) -> nix::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: key and value are NUL-terminated strings that outlive the call (or null where the command takes
    // none); the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            ptr(key),
            ptr(value),
            0 as libc::c_int,
        )
    };
    Errno::result(ret).map(drop)
}

/// fsconfig(FSCONFIG_SET_STRING): one `key=value` option of the filesystem.
pub fn fsconfig_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> nix::Result<()> {
    fsconfig(fs, FSCONFIG_SET_STRING, Some(key), Some(value))
}

/// fsconfig(FSCONFIG_SET_FLAG): one option without a value.
pub fn fsconfig_flag(fs: BorrowedFd<'_>, key: &CStr) -> nix::Result<()> {
    fsconfig(fs, FSCONFIG_SET_FLAG, Some(key), None)
}

/// fsconfig(FSCONFIG_CMD_CREATE): makes (or finds) the superblock.
pub fn fsconfig_create(fs: BorrowedFd<'_>) -> nix::Result<()> {
    fsconfig(fs, FSCONFIG_CMD_CREATE, None, None)
}

/// fsmount(2): a detached mount of the created filesystem with the MOUNT_ATTR_* `attrs`.
pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> nix::Result<OwnedFd> {
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: integer arguments only; the returned fd is fresh and owned here.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the syscall has just returned `ret`, a new descriptor.
    Ok(unsafe { own_new_fd(ret as RawFd) })
}

/// open_tree(2) with OPEN_TREE_CLONE of what `fd` refers to (AT_EMPTY_PATH): a detached copy of that mount (tree,
/// when `recursive`), with no path looked up.
pub fn open_tree_clone_fd(fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid fd, an empty NUL-terminated path and integer flags.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the syscall has just returned `ret`, a new descriptor.
    Ok(unsafe { own_new_fd(ret as RawFd) })
}

/// `struct sched_attr` from linux/sched/types.h (SCHED_ATTR_SIZE_VER1, with the utilization clamps).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) on the calling thread.
pub fn sched_setattr_self(attr: &SchedAttr) -> nix::Result<()> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid, fully initialised sched_attr whose size field matches the struct; it outlives
    // the call, which only reads it.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, value): the I/O priority of the calling process (inherited by its children).
pub fn ioprio_set_self(value: u32) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: integer-only syscall.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(ret).map(drop)
}

/// personality(2): sets the execution domain of the calling process (kept across execve).
pub fn set_personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: integer-only libc call.
    let ret = unsafe { libc::personality(persona) };
    Errno::result(ret).map(drop)
}

/// set_mempolicy(2) for the calling thread: `mode` (with its MPOL_F_* flags) over the node bits in `mask`.
pub fn set_mempolicy(mode: i32, mask: &[u64]) -> nix::Result<()> {
    // The kernel reads maxnode - 1 bits (its historic off-by-one, which libnuma also allows for).
    let maxnode = mask.len() as libc::c_ulong * 64 + 1;
    // SAFETY: `mask` is a live slice of exactly maxnode - 1 bits that the kernel only reads during the call.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask.as_ptr(), maxnode) };
    Errno::result(ret).map(drop)
}
