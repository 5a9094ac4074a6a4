//! One mount of config.json's `mounts`, built detached and moved onto its destination; `cgroup` mounts; the
//! filesystem and bind attribute helpers the other steps share.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};

use super::propagation::set_propagation;
use super::tmpcopyup::copy_tree;
use super::{cgroup_mount, idmap, sys, Context, Error, Mounted};
use crate::config::mount_options as options;
use crate::config::Linux;
use crate::config::Mount;
use crate::resolve::{self, fd_path, Root};

/// Every mount of config.json in order, then a tmpfs on /dev where the config mounts nothing there.
pub(super) fn mount_all(ctx: &Context, root: &Root) -> Result<Mounted, Error> {
    let mounts = &ctx.config.mounts;
    let mut done = Mounted::default();
    for (i, m) in mounts.iter().enumerate() {
        if let Some(fd) = mount_one(ctx, root, m, Some(i))? {
            done.dev_readonly = Some(fd);
        }
    }
    let has = |d: &str| {
        mounts
            .iter()
            .any(|m| resolve::relative(&m.destination) == resolve::relative(Path::new(d)))
    };
    if !has("/dev") {
        let dev = Mount::new(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        );
        mount_one(ctx, root, &dev, None)?;
    }
    Ok(done)
}

/// Makes the mount `mnt` is the root of read-only (not recursively).
pub(super) fn make_readonly(mnt: &OwnedFd) -> nix::Result<()> {
    let attr = crate::sys::MountAttr {
        attr_set: crate::sys::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    crate::sys::mount_setattr(mnt.as_fd(), false, &attr)
}

/// linux.mountLabel, where SELinux is on: the label of the filesystems berth mounts (not of binds, procfs, sysfs,
/// cgroups or mqueue, as runc). Without SELinux it is ignored, as runc ignores it.
fn mount_label(linux: &Linux) -> Option<&str> {
    linux
        .mount_label
        .as_deref()
        .filter(|_| crate::lsm::selinux_enabled())
}

/// One mount; `index` is its place in config.json's `mounts` (None for the /dev berth adds).
///
/// Every mount is built detached (open_tree(OPEN_TREE_CLONE) of a bind's source, fsopen/fsmount of a filesystem),
/// given all its attributes there (read-only, nosuid/nodev/noexec, atime, recursive attributes), and only then moved
/// onto the descriptor of its destination, resolved once inside the rootfs; propagation is then set on that same
/// mount through its descriptor. So a read-only mount is never visible writable, and no step looks a path up again
/// (a container racing berth with symlink swaps in a shared volume cannot redirect a later step).
/// Returns the mount's descriptor when `/dev`'s read-only flag was held back (see [`Mounted`]).
fn mount_one(
    ctx: &Context,
    root: &Root,
    m: &Mount,
    index: Option<usize>,
) -> Result<Option<OwnedFd>, Error> {
    let dest = &container_dest(ctx.rootfs, &m.destination);
    let fstype = m.fstype.as_str();
    let bind = m.bind;
    let source = &m.source;
    let merr = |source_err: nix::Error| Error::Mount {
        src: source.display().to_string(),
        dest: dest.clone(),
        fstype: fstype.to_string(),
        errno: source_err,
    };
    if fstype == "cgroup" || fstype == "cgroup2" {
        cgroup_mount::mount_cgroup(ctx, root, m)?;
        return Ok(None);
    }
    let invalid = |reason: String| Error::Invalid {
        dest: dest.clone(),
        reason,
    };
    if fstype == "proc" || fstype == "sysfs" {
        // runc's rule since CVE-2019-19921: procfs and sysfs only on an ordinary directory, never via a symlink.
        if let Ok(fd) = root.open_in_root(dest, OFlag::O_NOFOLLOW) {
            if is_symlink(&fd) {
                return Err(invalid(format!(
                    "{fstype} must be mounted on ordinary directory (a symlink is in the way)"
                )));
            }
        }
    }
    // A read-only /dev is populated first (runc too): the flag is applied by `finish`, on this same mount.
    let hold_ro = resolve::relative(dest) == Path::new("dev")
        && m.options.flags.contains(MsFlags::MS_RDONLY)
        && !m.options.flags.contains(MsFlags::MS_REMOUNT);
    let opts = if hold_ro {
        let mut held = m.options.clone();
        held.flags -= MsFlags::MS_RDONLY;
        std::borrow::Cow::Owned(held)
    } else {
        std::borrow::Cow::Borrowed(&m.options)
    };
    // A bind's source as a detached copy. In a user namespace `create` makes it with the host's credentials (the
    // init may not even be allowed to look at the source from there), inside the container's mount namespace and
    // at this point of the mount order, as it does for idmapped mounts (which only the host side may make).
    let tree = if bind {
        let idmapped = m.idmap.is_some();
        match index {
            Some(i) if idmapped || (ctx.in_user_ns && ctx.host_binds) => {
                Some((ctx.host_tree)(i).map_err(|reason| idmap::Error::Invalid {
                    src: source.clone(),
                    dest: dest.clone(),
                    reason,
                })?)
            }
            _ => {
                let c_src = cstr(source).map_err(&invalid)?;
                Some(
                    crate::sys::open_tree_clone(&c_src, opts.recursive_bind)
                        .map_err(|e| invalid(format!("bind source {}: {e}", source.display())))?,
                )
            }
        }
    } else {
        None
    };
    // A tmpfs without mode= takes the mode of the directory it covers, when there was one (as runc).
    let inherit_mode = if fstype == "tmpfs" && !has_param(&opts.data, "mode") {
        root.open_in_root(dest, OFlag::O_DIRECTORY)
            .ok()
            .and_then(|d| nix::sys::stat::fstat(d.as_raw_fd()).ok())
            .map(|st| st.st_mode & 0o7777)
    } else {
        None
    };
    let target = match &tree {
        Some(tree) => {
            let is_dir = nix::sys::stat::fstat(tree.as_raw_fd())
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .map_err(sys(format!("stat the bind source {}", source.display())))?;
            if is_dir {
                root.mkdir_all(dest, 0o755)?
            } else {
                root.touch(dest)?
            }
        }
        None => root.mkdir_all(dest, 0o755)?,
    };
    // Only procfs may sit on /proc and only sysfs on /sys (runc refuses anything else there: berth later trusts
    // what it finds in them). Judged on where the destination really resolved to. A bind of something that is
    // itself procfs or sysfs may go there (a host-pid-namespace container may bind the host's /proc, the rootless
    // config binds the host's /sys).
    let resolved = root.relative_of(&target);
    let magic = |fs| {
        tree.as_ref()
            .is_some_and(|t| crate::sys::fs_magic(t.as_fd()).ok() == Some(fs))
    };
    if resolved == Path::new("proc") && fstype != "proc" && !magic(libc::PROC_SUPER_MAGIC) {
        return Err(invalid("only procfs may be mounted on /proc".into()));
    }
    if resolved == Path::new("sys") && fstype != "sysfs" && !magic(libc::SYSFS_MAGIC) {
        return Err(invalid("only sysfs may be mounted on /sys".into()));
    }
    let mnt = match tree {
        Some(tree) => {
            set_bind_attrs(&tree, &opts, &merr)?;
            tree
        }
        None if opts.flags.contains(MsFlags::MS_REMOUNT) => {
            // "remount" of what is already there: nothing new is made, the kernel's remount does it.
            let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
            mount(
                Some(source),
                &fd_path(target.as_fd()),
                Some(fstype),
                opts.flags,
                data,
            )
            .map_err(merr)?;
            return Ok(None);
        }
        None => {
            let labelled = mount_label(&ctx.config.linux)
                .filter(|_| fstype != "mqueue")
                .map(|label| crate::lsm::with_mount_label(&opts.data, label));
            let mut data = labelled.unwrap_or_else(|| opts.data.clone());
            if let Some(mode) = inherit_mode {
                data = [data, format!("mode={mode:o}")]
                    .into_iter()
                    .filter(|d| !d.is_empty())
                    .collect::<Vec<_>>()
                    .join(",");
            }
            let fs = match new_filesystem(fstype, source, opts.flags, &data) {
                Err(nix::errno::Errno::EPERM) if matches!(fstype, "sysfs" | "mqueue") => {
                    host_instance(ctx, dest, fstype, &opts, &merr)?
                }
                other => other.map_err(merr)?,
            };
            // tmpcopyup: the shadowed directory's contents go into the new tmpfs before anyone sees it.
            if opts.tmpcopyup {
                copy_tree(&fd_path(target.as_fd()), &fd_path(fs.as_fd())).map_err(|e| {
                    Error::Io {
                        dest: dest.clone(),
                        what: "tmpcopyup".into(),
                        source: e,
                    }
                })?;
            }
            fs
        }
    };
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let attr = crate::sys::MountAttr {
            attr_set: opts.rec_set,
            attr_clr: opts.rec_clr,
            ..Default::default()
        };
        crate::sys::mount_setattr(mnt.as_fd(), true, &attr).map_err(|source| Error::Sys {
            what: format!("mount_setattr {} (recursive attributes)", dest.display()),
            source,
        })?;
    }
    crate::sys::move_mount_fd(mnt.as_fd(), target.as_fd()).map_err(|e| Error::Sys {
        what: format!(
            "move_mount {} onto {} (type {fstype})",
            source.display(),
            dest.display()
        ),
        source: e,
    })?;
    for p in &opts.propagation {
        set_propagation(mnt.as_fd(), *p).map_err(merr)?;
    }
    Ok(hold_ro.then_some(mnt))
}

/// A destination as a path inside the container. One that already starts with the rootfs's host path is taken as
/// joined to it (runc does so; tools that build nested binds write them that way).
fn container_dest(rootfs: &Path, dest: &Path) -> PathBuf {
    if let Ok(rel) = dest.strip_prefix(rootfs) {
        return Path::new("/").join(rel);
    }
    // Only a destination deeper than the rootfs could name it through another spelling.
    if dest.components().count() > rootfs.components().count() {
        if let Ok(real) = rootfs.canonicalize() {
            if let Ok(rel) = dest.strip_prefix(&real) {
                return Path::new("/").join(rel);
            }
        }
    }
    dest.to_path_buf()
}

pub(super) fn cstr(p: &Path) -> Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("NUL in path {}", p.display()))
}

fn has_param(data: &str, key: &str) -> bool {
    options::fs_params(data).iter().any(|(k, _)| k == key)
}

/// A detached mount of a new `fstype` filesystem: fsopen, its options, fsmount with the per-mount flags.
/// Superblock flags (ro, sync, dirsync, mand) go to the filesystem as mount(2) would pass them.
pub(super) fn new_filesystem(
    fstype: &str,
    source: &Path,
    flags: MsFlags,
    data: &str,
) -> nix::Result<OwnedFd> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| nix::errno::Errno::EINVAL);
    let fs = crate::sys::fsopen(&c(fstype)?)?;
    let source = source.to_string_lossy();
    if !source.is_empty() {
        crate::sys::fsconfig_string(fs.as_fd(), c"source", &c(&source)?)?;
    }
    for (flag, word) in [
        (MsFlags::MS_RDONLY, c"ro"),
        (MsFlags::MS_SYNCHRONOUS, c"sync"),
        (MsFlags::MS_DIRSYNC, c"dirsync"),
        (MsFlags::MS_MANDLOCK, c"mand"),
    ] {
        if flags.contains(flag) {
            crate::sys::fsconfig_flag(fs.as_fd(), word)?;
        }
    }
    for (key, value) in options::fs_params(data) {
        match value {
            Some(v) => crate::sys::fsconfig_string(fs.as_fd(), &c(&key)?, &c(&v)?)?,
            None => crate::sys::fsconfig_flag(fs.as_fd(), &c(&key)?)?,
        }
    }
    crate::sys::fsconfig_create(fs.as_fd())?;
    let (attrs, _) = options::mount_attrs(flags);
    crate::sys::fsmount(fs.as_fd(), attrs)
}

/// A sysfs needs a network namespace owned by the container's user namespace, an mqueue an ipc namespace: in a
/// user namespace without them (rootless, sharing the host's network or ipc) the kernel refuses a new instance.
/// Bind the host's instead, as crun and runc do, with the mount's flags; read-only applied to the whole tree, so that
/// no submount (/sys/fs/cgroup/...) stays writable.
fn host_instance(
    ctx: &Context,
    dest: &Path,
    fstype: &str,
    opts: &options::MountOptions,
    merr: &dyn Fn(nix::Error) -> Error,
) -> Result<OwnedFd, Error> {
    if !(ctx.in_user_ns || crate::namespaces::running_in_user_ns()) {
        return Err(merr(nix::errno::Errno::EPERM));
    }
    let (host, needs) = if fstype == "sysfs" {
        (c"/sys", "network")
    } else {
        (c"/dev/mqueue", "ipc")
    };
    let tree = crate::sys::open_tree_clone(host, true).map_err(|e| Error::Invalid {
        dest: dest.to_path_buf(),
        reason: format!(
            "a new {fstype} in a user namespace needs the container's own {needs} namespace (EPERM), and the \
             host's {host:?} cannot be bound instead: {e}"
        ),
    })?;
    set_bind_attrs(&tree, opts, merr)?;
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        let ro = crate::sys::MountAttr {
            attr_set: crate::sys::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        crate::sys::mount_setattr(tree.as_fd(), true, &ro).map_err(merr)?;
    }
    Ok(tree)
}

/// The per-mount flags of a bind, set on its detached copy. A bind with no flag word keeps the source's flags; any
/// flag word, one that clears (`dev`, `rw`, `exec`) included, makes it a bind remount with mount(2)'s meaning:
/// flags not asked for are cleared (runc ≥ 1.2). Those the kernel locked on the source (ro, nosuid, nodev, noexec
/// and the whole atime state, nodiratime included, in a user namespace) are kept unless the options change them
/// explicitly: then the kernel's EPERM stands, as in runc, which makes the bind inside the user namespace.
fn set_bind_attrs(
    tree: &OwnedFd,
    opts: &options::MountOptions,
    merr: &dyn Fn(nix::Error) -> Error,
) -> Result<(), Error> {
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if extra.is_empty() && opts.cleared.is_empty() {
        return Ok(());
    }
    let (set, clr) = options::mount_attrs(extra);
    let attr = |clr| crate::sys::MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    match crate::sys::mount_setattr(tree.as_fd(), false, &attr(clr)) {
        Err(nix::errno::Errno::EPERM) => {
            let locked = mount_flags_of(tree) - opts.cleared;
            let (locked_attrs, _) = options::mount_attrs(locked);
            let atime_state = crate::sys::MOUNT_ATTR__ATIME | crate::sys::MOUNT_ATTR_NODIRATIME;
            let clr = clr & !(locked_attrs & !atime_state);
            crate::sys::mount_setattr(tree.as_fd(), false, &attr(clr)).map_err(merr)
        }
        other => other.map_err(merr),
    }
}

fn is_symlink(fd: &std::os::fd::OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
        .unwrap_or(false)
}

/// The per-mount flags of the mount `fd` is on, as mount(2) flags.
pub(super) fn mount_flags_of(fd: &std::os::fd::OwnedFd) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let Ok(st) = nix::sys::statvfs::fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (have, want) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(have) {
            out |= want;
        }
    }
    out
}
