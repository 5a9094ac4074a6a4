//! The container's root filesystem: mounts in config order, /dev, pivot_root, then masked and read-only paths.
//! Runs in the init, inside the new mount namespace. Every container path is resolved inside the rootfs.

pub mod devices;
pub mod idmap;
pub mod mountinfo;
pub mod options;
pub mod resolve;
pub mod sysctl;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{Mount, Spec};

use resolve::{fd_path, Root};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mount {src} on {dest} (type {fstype}): {source}")]
    Mount {
        src: String,
        dest: PathBuf,
        fstype: String,
        source: nix::Error,
    },
    #[error(transparent)]
    Resolve(#[from] resolve::Error),
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("mount {dest}: {reason}")]
    Invalid { dest: PathBuf, reason: String },
    #[error(transparent)]
    Device(#[from] devices::Error),
    #[error(transparent)]
    Sysctl(#[from] sysctl::Error),
    #[error(transparent)]
    Idmap(#[from] idmap::Error),
    #[error("mount {dest}: {what}: {source}")]
    Io {
        dest: PathBuf,
        what: String,
        source: std::io::Error,
    },
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let what = what.into();
    move |source| Error::Sys { what, source }
}

/// What rootfs setup needs besides the config.
pub struct Context<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    /// The container's cgroup directories per hierarchy mount point (for `cgroup` mounts on v1).
    pub cgroup_paths: &'a std::collections::BTreeMap<String, PathBuf>,
    pub in_user_ns: bool,
    /// Whether `create` can make bind sources for the init (see `host_tree`): it needs CAP_SYS_ADMIN where it runs,
    /// which a rootless caller lacks; the init, mapped to that same caller, then opens them itself.
    pub host_binds: bool,
    /// Asks `create` for the detached copy of the source of config mount #N, made with the host's credentials
    /// (see [`idmap`]); called for idmapped binds, and for every bind in a user namespace.
    pub host_tree: &'a dyn Fn(usize) -> Result<OwnedFd, String>,
}

/// Does the container get a mount namespace (new or joined)? Without one, its mounts are made in berth's own
/// namespace, under the rootfs, and `delete` takes them down.
pub fn has_mount_ns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| {
            nss.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount)
        })
}

/// linux.rootfsPropagation as mount flags; rslave when unset.
pub fn root_propagation(spec: &Spec) -> Result<MsFlags, Error> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        Some(p) => options::propagation(p).ok_or_else(|| Error::Invalid {
            dest: "/".into(),
            reason: format!("unknown linux.rootfsPropagation {p:?}"),
        }),
    }
}

/// Checks of the rootfs part of the config that need no kernel, run by `create` before anything exists: the
/// propagation, every mount's options, idmap mappings, devices and sysctls.
pub fn validate(spec: &Spec) -> Result<(), Error> {
    root_propagation(spec)?;
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let dest = m.destination();
        let invalid = |reason: String| Error::Invalid {
            dest: dest.clone(),
            reason,
        };
        if !dest.is_absolute() {
            return Err(invalid("the destination must be an absolute path".into()));
        }
        let opts = options::parse(m.options().as_deref().unwrap_or(&[])).map_err(invalid)?;
        let bind = opts.bind || m.typ().as_deref() == Some("bind");
        if idmap::is_idmapped(m, &opts) {
            if !bind {
                return Err(invalid(
                    "idmap and uidMappings/gidMappings need a bind mount".into(),
                ));
            }
            idmap::mapping_for(spec, m).map_err(invalid)?;
        }
        if opts.tmpcopyup && m.typ().as_deref() != Some("tmpfs") {
            return Err(invalid("tmpcopyup is only valid for tmpfs".into()));
        }
    }
    for d in devices::of_spec(spec) {
        devices::node_from_spec(d)?;
    }
    sysctl::validate(spec)?;
    Ok(())
}

/// What `prepare` leaves for `finish`: the `/dev` mount whose read-only flag waits until /dev is populated.
#[derive(Default)]
pub struct Mounted {
    dev_readonly: Option<OwnedFd>,
}

/// Before pivot_root: propagation, the rootfs bind, every configured mount, /dev.
pub fn prepare(ctx: &Context) -> Result<Mounted, Error> {
    let mount_ns = has_mount_ns(ctx.spec);
    if mount_ns {
        let prop = root_propagation(ctx.spec)?;
        // No mount event of ours may reach the host: everything becomes a slave, or what the config asks. An
        // unbindable / would forbid the rootfs bind below, so that one waits until after pivot_root.
        let before = if prop.contains(MsFlags::MS_UNBINDABLE) {
            MsFlags::MS_SLAVE | MsFlags::MS_REC
        } else {
            prop
        };
        mount(None::<&str>, "/", None::<&str>, before, None::<&str>)
            .map_err(sys(format!("make / {before:?}")))?;
        // A shared mount holding the rootfs would carry the rootfs bind (and everything mounted below it) to
        // the host, and makes pivot_root fail: make it a slave (it still receives the host's mounts).
        // (After a recursive slave or private change nothing is shared: skip reading mountinfo then.)
        let none_shared = before.contains(MsFlags::MS_REC)
            && (before.contains(MsFlags::MS_SLAVE) || before.contains(MsFlags::MS_PRIVATE));
        let holder = (!none_shared)
            .then(|| mountinfo::mount_point_of(ctx.rootfs))
            .flatten();
        if let Some(parent) = holder.filter(|m| m.shared) {
            mount(
                None::<&str>,
                &parent.mount_point,
                None::<&str>,
                MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .map_err(sys(format!(
                "make {} (holding the rootfs) a slave",
                parent.mount_point.display()
            )))?;
        }
    }
    // pivot_root needs the new root to be a mount point; without a mount namespace only a read-only root needs
    // one (the remount must not reach the host mount that holds the rootfs).
    if mount_ns || readonly_root(ctx.spec) {
        mount(
            Some(ctx.rootfs),
            ctx.rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|source| Error::Mount {
            src: ctx.rootfs.display().to_string(),
            dest: ctx.rootfs.to_path_buf(),
            fstype: "bind".into(),
            source,
        })?;
    }
    let root = Root::open(ctx.rootfs)?;
    let empty = Vec::new();
    let mounts = ctx.spec.mounts().as_ref().unwrap_or(&empty);
    let mut done = Mounted::default();
    for (i, m) in mounts.iter().enumerate() {
        if let Some(fd) = mount_one(ctx, &root, m, Some(i))? {
            done.dev_readonly = Some(fd);
        }
    }
    let has = |d: &str| {
        mounts
            .iter()
            .any(|m| resolve::relative(m.destination()) == resolve::relative(Path::new(d)))
    };
    if !has("/dev") {
        let mut dev = Mount::default();
        dev.set_destination("/dev".into());
        dev.set_typ(Some("tmpfs".into()));
        dev.set_source(Some("tmpfs".into()));
        dev.set_options(Some(vec![
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]));
        mount_one(ctx, &root, &dev, None)?;
    }
    // In any user namespace but the initial one (the container's, or the one a rootless podman runs berth in)
    // mknod of a device is refused: bind the host's nodes.
    let bind_devices = ctx.in_user_ns || crate::namespaces::running_in_user_ns();
    devices::populate(&root, ctx.spec, bind_devices)?;
    if !mounts.iter().any(|m| m.typ().as_deref() == Some("devpts")) {
        devices::mount_devpts(&root)?;
    }
    Ok(done)
}

fn readonly_root(spec: &Spec) -> bool {
    spec.root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
}

/// linux.mountLabel, where SELinux is on: the label of the filesystems berth mounts (not of binds, procfs, sysfs,
/// cgroups or mqueue, as runc). Without SELinux it is ignored, as runc ignores it.
fn mount_label(spec: &Spec) -> Option<&str> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty())
        .filter(|_| crate::process::lsm::selinux_enabled())
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
    let dest = &container_dest(ctx.rootfs, m.destination());
    let fstype = m.typ().as_deref().unwrap_or("");
    let mut opts =
        options::parse(m.options().as_deref().unwrap_or(&[])).map_err(|reason| Error::Invalid {
            dest: dest.clone(),
            reason,
        })?;
    let bind = opts.bind || fstype == "bind";
    let source = m.source().clone().unwrap_or_default();
    let merr = |source_err: nix::Error| Error::Mount {
        src: source.display().to_string(),
        dest: dest.clone(),
        fstype: fstype.to_string(),
        source: source_err,
    };
    if fstype == "cgroup" || fstype == "cgroup2" {
        mount_cgroup(ctx, root, m, &opts)?;
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
        && opts.flags.contains(MsFlags::MS_RDONLY)
        && !opts.flags.contains(MsFlags::MS_REMOUNT);
    if hold_ro {
        opts.flags -= MsFlags::MS_RDONLY;
    }
    // A bind's source as a detached copy. In a user namespace `create` makes it with the host's credentials (the
    // init may not even be allowed to look at the source from there), inside the container's mount namespace and
    // at this point of the mount order, as it does for idmapped mounts (which only the host side may make).
    let tree = if bind {
        let idmapped = idmap::is_idmapped(m, &opts);
        match index {
            Some(i) if idmapped || (ctx.in_user_ns && ctx.host_binds) => {
                Some((ctx.host_tree)(i).map_err(|reason| idmap::Error::Invalid {
                    src: source.clone(),
                    dest: dest.clone(),
                    reason,
                })?)
            }
            _ => {
                let c_src = cstr(&source).map_err(&invalid)?;
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
                Some(&source),
                &fd_path(target.as_fd()),
                Some(fstype),
                opts.flags,
                data,
            )
            .map_err(merr)?;
            return Ok(None);
        }
        None => {
            let labelled = mount_label(ctx.spec)
                .filter(|_| fstype != "mqueue")
                .map(|label| crate::process::lsm::with_mount_label(&opts.data, label));
            let mut data = labelled.unwrap_or_else(|| opts.data.clone());
            if let Some(mode) = inherit_mode {
                data = [data, format!("mode={mode:o}")]
                    .into_iter()
                    .filter(|d| !d.is_empty())
                    .collect::<Vec<_>>()
                    .join(",");
            }
            let fs = match new_filesystem(fstype, &source, opts.flags, &data) {
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

fn cstr(p: &Path) -> Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("NUL in path {}", p.display()))
}

fn has_param(data: &str, key: &str) -> bool {
    options::fs_params(data).iter().any(|(k, _)| k == key)
}

/// A detached mount of a new `fstype` filesystem: fsopen, its options, fsmount with the per-mount flags.
/// Superblock flags (ro, sync, dirsync, mand) go to the filesystem as mount(2) would pass them.
fn new_filesystem(fstype: &str, source: &Path, flags: MsFlags, data: &str) -> nix::Result<OwnedFd> {
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

/// The per-mount flags of a bind, set on its detached copy. As a bind remount with mount(2), flags not asked for
/// are cleared; those the kernel locked on the source (nosuid, nodev, noexec, ro, atime in a user namespace) are
/// kept unless the options clear them explicitly (then the kernel's EPERM stands).
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

fn set_bind_attrs(
    tree: &OwnedFd,
    opts: &options::MountOptions,
    merr: &dyn Fn(nix::Error) -> Error,
) -> Result<(), Error> {
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if extra.is_empty() {
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
            let locked = locked_flags(tree) - opts.cleared;
            let (locked_attrs, _) = options::mount_attrs(locked);
            let clr = clr & !(locked_attrs & !crate::sys::MOUNT_ATTR__ATIME);
            crate::sys::mount_setattr(tree.as_fd(), false, &attr(clr)).map_err(merr)
        }
        other => other.map_err(merr),
    }
}

/// A propagation change (MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, with MS_REC for the whole tree) on the
/// mount `fd` is the root of.
fn set_propagation(fd: std::os::fd::BorrowedFd<'_>, p: MsFlags) -> nix::Result<()> {
    let attr = crate::sys::MountAttr {
        propagation: (p - MsFlags::MS_REC).bits(),
        ..Default::default()
    };
    crate::sys::mount_setattr(fd, p.contains(MsFlags::MS_REC), &attr)
}

fn is_symlink(fd: &std::os::fd::OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
        .unwrap_or(false)
}

/// The per-mount flags of the mount `fd` is on, as mount(2) flags.
fn locked_flags(fd: &std::os::fd::OwnedFd) -> MsFlags {
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

/// Copies a directory tree (tmpcopyup) without following any symlink: links are recreated as links.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            let mut input = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_nofollow()
                .open(&src)?;
            let mut output = std::fs::File::create(&dst)?;
            std::io::copy(&mut input, &mut output)?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    let meta = std::fs::metadata(from)?;
    std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
    }
}

/// `cgroup` mounts: cgroup2 where the host is unified, else a tmpfs with the container's directory of each v1
/// hierarchy bound below it (read-only unless the config says rw).
fn mount_cgroup(
    ctx: &Context,
    root: &Root,
    m: &Mount,
    opts: &options::MountOptions,
) -> Result<(), Error> {
    let dest = m.destination();
    let target = root.mkdir_all(dest, 0o755)?;
    let flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let merr = |fstype: &str| {
        let (dest, fstype) = (dest.clone(), fstype.to_string());
        move |source| Error::Mount {
            src: "cgroup".into(),
            dest,
            fstype,
            source,
        }
    };
    let unified = ctx.cgroup_paths.len() == 1
        && ctx
            .cgroup_paths
            .keys()
            .all(|k| crate::cgroups::fs::is_cgroup2(Path::new(k)).unwrap_or(false));
    let attach = |mnt: &OwnedFd, onto: &OwnedFd, fstype: &str| {
        crate::sys::move_mount_fd(mnt.as_fd(), onto.as_fd()).map_err(merr(fstype))
    };
    if unified {
        let fs =
            new_filesystem("cgroup2", Path::new("cgroup2"), flags, "").map_err(merr("cgroup2"))?;
        return attach(&fs, &target, "cgroup2");
    }
    // The tmpfs is ours: its subdirectories are made and found through it, not through the destination's path.
    let tmpfs = new_filesystem(
        "tmpfs",
        Path::new("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "mode=755",
    )
    .map_err(merr("tmpfs"))?;
    attach(&tmpfs, &target, "tmpfs")?;
    let (set, clr) = options::mount_attrs(flags);
    let attr = crate::sys::MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    for (mnt, dir) in ctx.cgroup_paths {
        let name = Path::new(mnt).file_name().unwrap_or_default();
        nix::sys::stat::mkdirat(
            Some(tmpfs.as_raw_fd()),
            name,
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .map_err(merr("tmpfs"))?;
        let sub = nix::fcntl::openat(
            Some(tmpfs.as_raw_fd()),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(crate::sys::adopt_fd)
        .map_err(merr("tmpfs"))?;
        let c_dir = cstr(dir).map_err(|reason| Error::Invalid {
            dest: dest.clone(),
            reason,
        })?;
        let tree = crate::sys::open_tree_clone(&c_dir, false).map_err(merr("bind"))?;
        crate::sys::mount_setattr(tree.as_fd(), false, &attr).map_err(merr("bind"))?;
        attach(&tree, &sub, "bind")?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let ro = crate::sys::MountAttr {
            attr_set: crate::sys::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        crate::sys::mount_setattr(tmpfs.as_fd(), false, &ro).map_err(merr("tmpfs"))?;
    }
    Ok(())
}

/// pivot_root into the rootfs and detach the old root. The pivot_root(".", ".") form needs no directory for the
/// old root inside the container.
fn pivot(rootfs: &Path) -> Result<(), Error> {
    let old_root = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(crate::sys::adopt_fd)
    .map_err(sys("open the old root"))?;
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    nix::unistd::pivot_root(".", ".").map_err(sys(format!("pivot_root {}", rootfs.display())))?;
    // The old root is now stacked on the new one. Make its tree (and only its tree: "." would name the new root
    // and undo the container's own propagation) a slave, so that detaching it cannot propagate to the host.
    nix::unistd::fchdir(old_root.as_raw_fd()).map_err(sys("fchdir to the old root"))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("make old root rslave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach old root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// Makes the rootfs the container's `/`: pivot_root, or with --no-pivot MS_MOVE + chroot, or without a mount
/// namespace of its own a plain chroot (the mounts stay in berth's namespace, under the rootfs).
pub fn enter_root(spec: &Spec, rootfs: &Path, no_pivot: bool) -> Result<(), Error> {
    if !has_mount_ns(spec) {
        chroot_into(rootfs)
    } else if no_pivot {
        move_root(rootfs)
    } else {
        pivot(rootfs)
    }
}

fn chroot_into(rootfs: &Path) -> Result<(), Error> {
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    nix::unistd::chroot(".").map_err(sys(format!("chroot {}", rootfs.display())))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// --no-pivot: move the rootfs over / and chroot (for hosts whose root is a ramdisk, where pivot_root fails).
///
/// The host's mounts stay in the container's mount namespace, out of sight but not out of the kernel's: a full
/// procfs or sysfs mount among them would let the container mount a bare /proc or /sys of its own (in a user
/// namespace, the kernel allows that only where a full one is already visible). So, as runc, every full procfs and
/// sysfs mount outside the rootfs is detached first (covered with a tmpfs where it cannot be).
fn move_root(rootfs: &Path) -> Result<(), Error> {
    let real = rootfs
        .canonicalize()
        .unwrap_or_else(|_| rootfs.to_path_buf());
    let full = mountinfo::full_proc_and_sys_mounts().map_err(|e| Error::Io {
        dest: "/".into(),
        what: "read /proc/self/mountinfo".into(),
        source: e,
    })?;
    for p in full.iter().filter(|p| !p.starts_with(&real)) {
        // Slave first, so that the detach cannot propagate to the host.
        match mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // A parent already detached took it along.
            Err(nix::errno::Errno::ENOENT) => continue,
            other => other.map_err(sys(format!("make {} a slave", p.display())))?,
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(sys(format!("cover {}", p.display())))?,
            other => other.map_err(sys(format!("detach {}", p.display())))?,
        }
    }
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(sys("move rootfs to /"))?;
    nix::unistd::chroot(".").map_err(sys("chroot ."))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// After pivot_root: the root's propagation, masked and read-only paths, a read-only /dev, then the read-only root.
pub fn finish(spec: &Spec, mounted: Mounted) -> Result<(), Error> {
    let linux = spec.linux().as_ref();
    if has_mount_ns(spec) {
        // Only / itself: the recursive part was applied before the mounts, which have their own propagation.
        let prop = root_propagation(spec)? - MsFlags::MS_REC;
        mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
            .map_err(sys(format!("make the container's / {prop:?}")))?;
    }
    // Before the read-only and masked paths (which may cover /proc/sys), as runc does.
    sysctl::apply(spec)?;
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(Path::new(p))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(Path::new(p))?;
    }
    if let Some(dev) = mounted.dev_readonly {
        let attr = crate::sys::MountAttr {
            attr_set: crate::sys::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        crate::sys::mount_setattr(dev.as_fd(), false, &attr).map_err(sys("make /dev read-only"))?;
    }
    if readonly_root(spec) {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(sys("remount / read-only"))?;
    }
    Ok(())
}

fn slash_root() -> Result<Root, Error> {
    Ok(Root::open(Path::new("/"))?)
}

/// `path` opened (O_PATH) inside the container's root, with that root; None when it does not exist.
fn open_existing(path: &Path) -> Result<Option<(Root, OwnedFd)>, Error> {
    let root = slash_root()?;
    match root.open_in_root(path, OFlag::empty()) {
        Ok(fd) => Ok(Some((root, fd))),
        Err(e) if e.source == nix::errno::Errno::ENOENT => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Masks a path: /dev/null over a file, an empty read-only tmpfs over a directory. Absent paths are skipped.
pub fn mask_path(path: &Path) -> Result<(), Error> {
    let Some((_, target)) = open_existing(path)? else {
        return Ok(());
    };
    let is_dir = nix::sys::stat::fstat(target.as_raw_fd())
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    let mask = if is_dir {
        new_filesystem(
            "tmpfs",
            Path::new("tmpfs"),
            MsFlags::MS_RDONLY,
            "size=0k,nr_inodes=1",
        )
    } else {
        let null = devices::open_verified_null()?;
        crate::sys::open_tree_clone_fd(null.as_fd(), false)
    };
    mask.and_then(|m| crate::sys::move_mount_fd(m.as_fd(), target.as_fd()))
        .map_err(|source| Error::Mount {
            src: if is_dir { "tmpfs" } else { "/dev/null" }.into(),
            dest: path.to_path_buf(),
            fstype: "mask".into(),
            source,
        })
}

/// Makes a path read-only: a detached recursive copy of what is there, its top made read-only (as a bind remount,
/// like runc), then moved onto it. Absent paths are skipped.
pub fn readonly_path(path: &Path) -> Result<(), Error> {
    let Some((_, target)) = open_existing(path)? else {
        return Ok(());
    };
    let attr = crate::sys::MountAttr {
        attr_set: crate::sys::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    crate::sys::open_tree_clone_fd(target.as_fd(), true)
        .and_then(|tree| {
            crate::sys::mount_setattr(tree.as_fd(), false, &attr)?;
            crate::sys::move_mount_fd(tree.as_fd(), target.as_fd())
        })
        .map_err(|source| Error::Mount {
            src: path.display().to_string(),
            dest: path.to_path_buf(),
            fstype: "bind".into(),
            source,
        })
}

/// Takes down every mount at or below `rootfs` in berth's own namespace, deepest first and lazily (for containers
/// without a mount namespace, whose mounts were made there). Returns how many were unmounted.
pub fn unmount_all_under(rootfs: &Path) -> Result<usize, Error> {
    // mountinfo shows real paths (the bundle's rootfs may be reached through a symlink).
    let real = rootfs.canonicalize();
    let rootfs = real.as_deref().unwrap_or(rootfs);
    let mut points = mountinfo::mounts_under(rootfs).map_err(|e| Error::Io {
        dest: rootfs.to_path_buf(),
        what: "read /proc/self/mountinfo".into(),
        source: e,
    })?;
    // Deepest first; among equals, the latest (topmost) first.
    points.reverse();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut n = 0;
    for p in points {
        match umount2(&p, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => n += 1,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(source) => {
                return Err(Error::Sys {
                    what: format!("umount {}", p.display()),
                    source,
                })
            }
        }
    }
    Ok(n)
}
