//! The container's root filesystem: mounts in config order, /dev, pivot_root, then masked and read-only paths.
//! Runs in the init, inside the new mount namespace. Every container path is resolved inside the rootfs.

pub mod devices;
pub mod options;
pub mod resolve;

use std::os::fd::AsFd;
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
}

/// Before pivot_root: propagation, the rootfs bind, every configured mount, /dev.
pub fn prepare(ctx: &Context) -> Result<(), Error> {
    let linux = ctx.spec.linux().as_ref();
    let root_prop = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => options::propagation(p).ok_or_else(|| Error::Invalid {
            dest: "/".into(),
            reason: format!("unknown linux.rootfsPropagation {p:?}"),
        })?,
    };
    // No mount event of ours may reach the host: make everything a slave (or what the config asks) first.
    mount(None::<&str>, "/", None::<&str>, root_prop, None::<&str>)
        .map_err(sys("make / ".to_string() + &format!("{root_prop:?}")))?;
    // pivot_root needs the new root to be a mount point.
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
    let root = Root::open(ctx.rootfs)?;
    let empty = Vec::new();
    let mounts = ctx.spec.mounts().as_ref().unwrap_or(&empty);
    for m in mounts {
        mount_one(ctx, &root, m)?;
    }
    let has_dev = mounts.iter().any(|m| m.destination() == Path::new("/dev"));
    if !has_dev {
        let dev = Mount::default();
        let mut dev = dev;
        dev.set_destination("/dev".into());
        dev.set_typ(Some("tmpfs".into()));
        dev.set_source(Some("tmpfs".into()));
        dev.set_options(Some(vec![
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]));
        mount_one(ctx, &root, &dev)?;
    }
    devices::populate(&root, ctx.spec, ctx.in_user_ns)?;
    Ok(())
}

fn mount_one(ctx: &Context, root: &Root, m: &Mount) -> Result<(), Error> {
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
    // Only procfs may sit on /proc and only sysfs on /sys (runc refuses anything else there, since a bind there
    // would let the container shadow what berth later checks).
    let rel = resolve::relative(dest);
    if (rel == Path::new("proc") && fstype != "proc")
        || (rel == Path::new("sys") && fstype != "sysfs")
    {
        return Err(Error::Invalid {
            dest: dest.clone(),
            reason: format!(
                "only {} may be mounted here",
                if rel == Path::new("proc") {
                    "procfs"
                } else {
                    "sysfs"
                }
            ),
        });
    }
    let target = if bind {
        let meta = std::fs::metadata(&source).map_err(|e| Error::Invalid {
            dest: dest.clone(),
            reason: format!("bind source {}: {e}", source.display()),
        })?;
        if meta.is_dir() {
            root.mkdir_all(dest, 0o755)?
        } else {
            root.touch(dest)?
        }
    } else {
        root.mkdir_all(dest, 0o755)?
    };
    let target_path = fd_path(target.as_fd());
    if bind {
        let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        mount(
            Some(&source),
            &target_path,
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(merr)?;
        // A bind ignores the other flags: a remount applies them (this is what makes `ro` binds read-only).
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let fresh = root.open_in_root(dest, OFlag::empty())?;
            mount(
                None::<&str>,
                &fd_path(fresh.as_fd()),
                None::<&str>,
                extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(merr)?;
        }
    } else {
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        mount(Some(&source), &target_path, Some(fstype), opts.flags, data).map_err(merr)?;
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
pub fn pivot(rootfs: &Path) -> Result<(), Error> {
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    nix::unistd::pivot_root(".", ".").map_err(sys(format!("pivot_root {}", rootfs.display())))?;
    // The old root is stacked on "."; make it a slave so unmounting it cannot propagate to the host.
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

/// --no-pivot: move the rootfs over / and chroot (for hosts whose root is a ramdisk, where pivot_root fails).
pub fn move_root(rootfs: &Path) -> Result<(), Error> {
    nix::unistd::chdir(rootfs).map_err(sys(format!("chdir {}", rootfs.display())))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(sys("move rootfs to /"))?;
    nix::unistd::chroot(".").map_err(sys("chroot ."))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}

/// After pivot_root: masked and read-only paths, then the read-only root.
pub fn finish(spec: &Spec) -> Result<(), Error> {
    let linux = spec.linux().as_ref();
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
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
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

/// Masks a path: /dev/null over a file, an empty read-only tmpfs over a directory. Absent paths are skipped.
pub fn mask_path(path: &Path) -> Result<(), Error> {
    let root = slash_root()?;
    let target = match root.open_in_root(path, OFlag::empty()) {
        Ok(fd) => fd,
        Err(e) if e.source == nix::errno::Errno::ENOENT => return Ok(()),
        Err(e) => return Err(e.into()),
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
    let root = slash_root()?;
    let target = match root.open_in_root(path, OFlag::empty()) {
        Ok(fd) => fd,
        Err(e) if e.source == nix::errno::Errno::ENOENT => return Ok(()),
        Err(e) => return Err(e.into()),
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
