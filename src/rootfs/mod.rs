//! The container's root filesystem: mounts in config order, /dev, pivot_root, then masked and read-only paths.
//! Runs in the init, inside the new mount namespace. Every container path is resolved inside the rootfs.
//!
//! One file per job: `validate` (config checks that need the kernel's tables, before anything exists), `propagation`, `mounts` (one mount of
//! the config), `cgroup_mount`, `tmpcopyup`, `devices` (/dev), `pivot` (the rootfs becomes `/`), `masks` (masked
//! and read-only paths), `sysctl`, `idmap` (idmapped and user-namespace binds), `unmount` (for containers
//! without a mount namespace). This file holds the order: [`prepare`], [`enter_root`], [`finish`].

mod cgroup_mount;
pub mod devices;
pub mod idmap;
mod masks;
pub mod mountinfo;
mod mounts;
mod pivot;
mod propagation;
pub mod sysctl;
mod tmpcopyup;
mod unmount;
mod validate;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::config::Config;

use crate::resolve::Root;

pub use pivot::enter_root;
pub use unmount::unmount_all_under;
pub use validate::validate;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// In runc's words (`error mounting "src" to rootfs at "dest": ...: operation not permitted`), which people
    /// search for and runc's suite matches; the errno text is Go's (glibc's, lower case).
    #[error("error mounting {src:?} to rootfs at {dest:?} (type {fstype}): {}", errno.desc().to_lowercase())]
    Mount {
        src: String,
        dest: PathBuf,
        fstype: String,
        errno: nix::Error,
    },
    #[error(transparent)]
    Resolve(#[from] crate::resolve::Error),
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
    pub config: &'a Config,
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

/// What `prepare` leaves for `finish`: the `/dev` mount whose read-only flag waits until /dev is populated.
#[derive(Default)]
pub struct Mounted {
    dev_readonly: Option<OwnedFd>,
}

/// Before pivot_root: propagation, the rootfs bind, every configured mount, /dev.
pub fn prepare(ctx: &Context) -> Result<Mounted, Error> {
    let linux = &ctx.config.linux;
    let mount_ns = ctx.config.namespaces.mount;
    if mount_ns {
        propagation::before_mounts(linux, ctx.rootfs)?;
    }
    // pivot_root needs the new root to be a mount point; without a mount namespace only a read-only root needs
    // one (the remount must not reach the host mount that holds the rootfs).
    if mount_ns || readonly_root(ctx.config) {
        pivot::bind_rootfs(ctx.rootfs)?;
    }
    let root = Root::open(ctx.rootfs)?;
    let mounted = mounts::mount_all(ctx, &root)?;
    // In any user namespace but the initial one (the container's, or the one a rootless podman runs berth in)
    // mknod of a device is refused: bind the host's nodes.
    let bind_devices = ctx.in_user_ns || crate::namespaces::running_in_user_ns();
    devices::populate(&root, linux, bind_devices)?;
    if !ctx.config.mounts.iter().any(|m| m.fstype == "devpts") {
        devices::mount_devpts(&root)?;
    }
    Ok(mounted)
}

/// After pivot_root: the root's propagation, masked and read-only paths, a read-only /dev, then the read-only root.
pub fn finish(config: &Config, mounted: Mounted) -> Result<(), Error> {
    let linux = &config.linux;
    if config.namespaces.mount {
        propagation::after_pivot(linux)?;
    }
    // Before the read-only and masked paths (which may cover /proc/sys), as runc does.
    sysctl::apply(config)?;
    masks::apply(linux)?;
    if let Some(dev) = mounted.dev_readonly {
        mounts::make_readonly(&dev).map_err(sys("make /dev read-only"))?;
    }
    if readonly_root(config) {
        pivot::remount_root_readonly()?;
    }
    Ok(())
}

fn readonly_root(config: &Config) -> bool {
    config.root.readonly().unwrap_or(false)
}
