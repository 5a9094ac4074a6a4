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
    /// Asks `create` for the detached idmapped mount of config mount #N (see [`idmap`]); only called for
    /// idmapped mounts.
    pub idmapped_tree: &'a dyn Fn(usize) -> Result<OwnedFd, String>,
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

/// Before pivot_root: propagation, the rootfs bind, every configured mount, /dev.
pub fn prepare(ctx: &Context) -> Result<(), Error> {
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
    for (i, m) in mounts.iter().enumerate() {
        mount_one(ctx, &root, m, Some(i))?;
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
    devices::populate(&root, ctx.spec, ctx.in_user_ns)?;
    if !mounts.iter().any(|m| m.typ().as_deref() == Some("devpts")) {
        devices::mount_devpts(&root)?;
    }
    Ok(())
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
fn mount_one(ctx: &Context, root: &Root, m: &Mount, index: Option<usize>) -> Result<(), Error> {
    let dest = m.destination();
    let fstype = m.typ().as_deref().unwrap_or("");
    let opts =
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
        return mount_cgroup(ctx, root, m, &opts);
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
                    "{fstype} must be mounted on an ordinary directory, not a symlink"
                )));
            }
        }
    }
    // An idmapped mount is made by `create` on the host side, which also resolves its source (the init may not
    // even be allowed to look at it from its user namespace): what the destination must be is read off the copy.
    let idmapped = match index {
        Some(i) if bind && idmap::is_idmapped(m, &opts) => Some((ctx.idmapped_tree)(i).map_err(
            |reason| idmap::Error::Invalid {
                src: source.clone(),
                dest: dest.clone(),
                reason,
            },
        )?),
        _ => None,
    };
    let target = if bind {
        let is_dir = match &idmapped {
            Some(tree) => nix::sys::stat::fstat(tree.as_raw_fd())
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .map_err(sys(format!(
                    "stat the idmapped mount of {}",
                    source.display()
                )))?,
            None => std::fs::metadata(&source)
                .map_err(|e| invalid(format!("bind source {}: {e}", source.display())))?
                .is_dir(),
        };
        if is_dir {
            root.mkdir_all(dest, 0o755)?
        } else {
            root.touch(dest)?
        }
    } else {
        root.mkdir_all(dest, 0o755)?
    };
    // Only procfs may sit on /proc and only sysfs on /sys (runc refuses anything else there: berth later trusts
    // what it finds in them). Judged on where the destination really resolved to.
    // (A bind of something that is itself on sysfs may go on /sys: the rootless config binds the host's /sys.)
    let resolved = root.relative_of(&target);
    let sysfs_bind = bind && is_on_sysfs(&source);
    if resolved == Path::new("proc") && fstype != "proc" {
        return Err(invalid("only procfs may be mounted on /proc".into()));
    }
    if resolved == Path::new("sys") && fstype != "sysfs" && !sysfs_bind {
        return Err(invalid("only sysfs may be mounted on /sys".into()));
    }
    let target_path = fd_path(target.as_fd());
    if let Some(tree) = idmapped {
        idmap::attach(tree.as_fd(), target.as_fd()).map_err(|e| idmap::Error::Sys {
            src: source.clone(),
            dest: dest.clone(),
            what: "move_mount".into(),
            source: e,
            hint: "",
        })?;
        remount_bind(root, dest, &opts, &merr)?;
    } else if bind {
        let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        mount(
            Some(&source),
            &target_path,
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(merr)?;
        remount_bind(root, dest, &opts, &merr)?;
    } else {
        // tmpcopyup: keep a handle on the directory the tmpfs will hide, to copy it in afterwards.
        let shadowed = opts
            .tmpcopyup
            .then(|| root.open_in_root(dest, OFlag::O_DIRECTORY))
            .transpose()?;
        let labelled = mount_label(ctx.spec)
            .filter(|_| fstype != "mqueue")
            .map(|label| crate::process::lsm::with_mount_label(&opts.data, label));
        let data = match &labelled {
            Some(d) => Some(d.as_str()),
            None => (!opts.data.is_empty()).then_some(opts.data.as_str()),
        };
        mount(Some(&source), &target_path, Some(fstype), opts.flags, data).map_err(merr)?;
        if let Some(old) = shadowed {
            let fresh = root.open_in_root(dest, OFlag::O_DIRECTORY)?;
            copy_tree(&fd_path(old.as_fd()), &fd_path(fresh.as_fd())).map_err(|e| Error::Io {
                dest: dest.clone(),
                what: "tmpcopyup".into(),
                source: e,
            })?;
        }
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let fresh = root.open_in_root(dest, OFlag::empty())?;
        let attr = crate::sys::MountAttr {
            attr_set: opts.rec_set,
            attr_clr: opts.rec_clr,
            ..Default::default()
        };
        crate::sys::mount_setattr(fresh.as_fd(), true, &attr).map_err(|source| Error::Sys {
            what: format!("mount_setattr {} (recursive attributes)", dest.display()),
            source,
        })?;
    }
    if !opts.propagation.is_empty() {
        let fresh = root.open_in_root(dest, OFlag::empty())?;
        for p in &opts.propagation {
            mount(
                None::<&str>,
                &fd_path(fresh.as_fd()),
                None::<&str>,
                *p,
                None::<&str>,
            )
            .map_err(merr)?;
        }
    }
    Ok(())
}

fn is_on_sysfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::SYSFS_MAGIC)
}

fn is_symlink(fd: &std::os::fd::OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
        .unwrap_or(false)
}

/// A bind ignores the other flags: a remount applies them (this is what makes `ro` binds read-only). Flags the
/// kernel locked on the source (nosuid, nodev, noexec, atime in a user namespace) are kept, or the remount fails.
fn remount_bind(
    root: &Root,
    dest: &Path,
    opts: &options::MountOptions,
    merr: &dyn Fn(nix::Error) -> Error,
) -> Result<(), Error> {
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if extra.is_empty() {
        return Ok(());
    }
    let fresh = root.open_in_root(dest, OFlag::empty())?;
    let path = fd_path(fresh.as_fd());
    let flags = extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, &path, None::<&str>, flags, None::<&str>) {
        Err(nix::errno::Errno::EPERM) => {
            let locked = locked_flags(&fresh) - opts.cleared;
            mount(
                None::<&str>,
                &path,
                None::<&str>,
                flags | locked,
                None::<&str>,
            )
            .map_err(merr)
        }
        other => other.map_err(merr),
    }
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
    if unified {
        return mount(
            Some("cgroup2"),
            &fd_path(target.as_fd()),
            Some("cgroup2"),
            flags,
            None::<&str>,
        )
        .map_err(merr("cgroup2"));
    }
    mount(
        Some("tmpfs"),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(merr("tmpfs"))?;
    for (mnt, dir) in ctx.cgroup_paths {
        let name = Path::new(mnt).file_name().unwrap_or_default();
        let sub = dest.join(name);
        let t = root.mkdir_all(&sub, 0o755)?;
        let p = fd_path(t.as_fd());
        mount(Some(dir), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(merr("bind"))?;
        let t = root.open_in_root(&sub, OFlag::empty())?;
        mount(
            None::<&str>,
            &fd_path(t.as_fd()),
            None::<&str>,
            flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(merr("bind"))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let t = root.open_in_root(dest, OFlag::empty())?;
        mount(
            None::<&str>,
            &fd_path(t.as_fd()),
            None::<&str>,
            MsFlags::MS_RDONLY
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            Some("mode=755"),
        )
        .map_err(merr("tmpfs"))?;
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
fn move_root(rootfs: &Path) -> Result<(), Error> {
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(sys("move rootfs to /"))?;
    nix::unistd::chroot(".").map_err(sys("chroot ."))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// After pivot_root: the root's propagation, masked and read-only paths, then the read-only root.
pub fn finish(spec: &Spec) -> Result<(), Error> {
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
    let tp = fd_path(target.as_fd());
    let is_dir = std::fs::metadata(&tp).map(|m| m.is_dir()).unwrap_or(false);
    let res = if is_dir {
        mount(
            Some("tmpfs"),
            &tp,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k,nr_inodes=1"),
        )
    } else {
        let null = devices::open_verified_null()?;
        mount(
            Some(&fd_path(null.as_fd())),
            &tp,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    res.map_err(|source| Error::Mount {
        src: if is_dir { "tmpfs" } else { "/dev/null" }.into(),
        dest: path.to_path_buf(),
        fstype: "mask".into(),
        source,
    })
}

/// Makes a path read-only with a bind onto itself plus a read-only remount. Absent paths are skipped.
pub fn readonly_path(path: &Path) -> Result<(), Error> {
    let Some((root, target)) = open_existing(path)? else {
        return Ok(());
    };
    let tp = fd_path(target.as_fd());
    let merr = |source| Error::Mount {
        src: path.display().to_string(),
        dest: path.to_path_buf(),
        fstype: "bind".into(),
        source,
    };
    mount(
        Some(&tp),
        &tp,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(merr)?;
    let again = root.open_in_root(path, OFlag::empty())?;
    mount(
        None::<&str>,
        &fd_path(again.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(merr)
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
