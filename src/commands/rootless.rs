//! Rootless mode, decided as runc decides it: berth is rootless when its effective uid is not 0, or when it is uid 0
//! of a user namespace that is not the initial one (rootless podman calls the runtime from inside its own). Rootless
//! berth keeps its state under `$XDG_RUNTIME_DIR/berth` and treats cgroups it may not write as absent.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// What the decision depends on, read once from the process.
pub struct Caller {
    pub euid: u32,
    pub in_user_ns: bool,
    pub xdg_runtime_dir: Option<String>,
    pub user: Option<String>,
}

impl Caller {
    pub fn current() -> Self {
        Caller {
            euid: nix::unistd::geteuid().as_raw(),
            in_user_ns: crate::namespaces::running_in_user_ns(),
            xdg_runtime_dir: std::env::var("XDG_RUNTIME_DIR").ok(),
            user: std::env::var("USER").ok(),
        }
    }

    /// The state root when `--root` is not given: `$XDG_RUNTIME_DIR/berth` for a non-root caller, and for uid 0 of
    /// a user namespace unless `USER` says root (runc's rule); the system's `/run/berth` otherwise, including for
    /// the real root whatever its XDG_RUNTIME_DIR says.
    pub fn default_root(&self) -> PathBuf {
        let xdg = self.xdg_runtime_dir.as_deref().filter(|d| !d.is_empty());
        let honour = self.euid != 0 || (self.in_user_ns && self.user.as_deref() != Some("root"));
        match xdg {
            Some(dir) if honour => PathBuf::from(dir).join("berth"),
            _ => PathBuf::from(crate::cli::DEFAULT_ROOT),
        }
    }

    /// Whether cgroups are handled rootless (see `cgroups::rootless`): `--rootless true|false` decides; absent or
    /// `auto`, a non-root caller or root of a non-initial user namespace is rootless.
    pub fn rootless_cgroups(&self, flag: Option<&str>) -> Result<bool> {
        match flag {
            None | Some("auto") => Ok(self.euid != 0 || self.in_user_ns),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => {
                bail!("invalid value for --rootless: {other:?} (want true, false or auto)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(euid: u32, in_user_ns: bool, xdg: Option<&str>, user: Option<&str>) -> Caller {
        Caller {
            euid,
            in_user_ns,
            xdg_runtime_dir: xdg.map(String::from),
            user: user.map(String::from),
        }
    }

    #[test]
    fn state_root_follows_runc() {
        let x = Some("/run/user/1000");
        assert_eq!(
            caller(1000, false, x, Some("u")).default_root(),
            PathBuf::from("/run/user/1000/berth")
        );
        // The real root keeps the system root even with an XDG_RUNTIME_DIR (a login session's /run/user/0).
        assert_eq!(
            caller(0, false, Some("/run/user/0"), Some("root")).default_root(),
            PathBuf::from("/run/berth")
        );
        // uid 0 of a user namespace (rootless podman): the caller's runtime dir, unless USER says root.
        assert_eq!(
            caller(0, true, x, Some("u")).default_root(),
            PathBuf::from("/run/user/1000/berth")
        );
        assert_eq!(
            caller(0, true, x, None).default_root(),
            PathBuf::from("/run/user/1000/berth")
        );
        assert_eq!(
            caller(0, true, x, Some("root")).default_root(),
            PathBuf::from("/run/berth")
        );
        // No runtime dir: the system root (where a non-root caller then fails with EACCES, as runc does).
        assert_eq!(
            caller(1000, false, None, None).default_root(),
            PathBuf::from("/run/berth")
        );
        assert_eq!(
            caller(1000, false, Some(""), None).default_root(),
            PathBuf::from("/run/berth")
        );
    }

    #[test]
    fn rootless_cgroups_auto_and_forced() {
        assert!(caller(1000, false, None, None)
            .rootless_cgroups(None)
            .unwrap());
        assert!(caller(0, true, None, None)
            .rootless_cgroups(Some("auto"))
            .unwrap());
        assert!(!caller(0, false, None, None).rootless_cgroups(None).unwrap());
        assert!(caller(0, false, None, None)
            .rootless_cgroups(Some("true"))
            .unwrap());
        assert!(!caller(1000, false, None, None)
            .rootless_cgroups(Some("false"))
            .unwrap());
        let e = caller(0, false, None, None)
            .rootless_cgroups(Some("maybe"))
            .unwrap_err();
        assert!(e.to_string().contains("--rootless"), "{e}");
    }
}
