//! AppArmor (process.apparmorProfile) and SELinux (process.selinuxLabel, linux.mountLabel), applied on exec
//! through the verified procfs ([`crate::procfs`]). When the host does not have the LSM, berth does what runc does:
//! an AppArmor profile or a SELinux process label is an error (runc fails writing the attribute, resp. refuses the
//! label in its config validation); a mount label is ignored.

use std::path::Path;

use crate::procfs::{self, Proc};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("process.apparmorProfile {0:?}: AppArmor is not enabled on this host")]
    AppArmorDisabled(String),
    #[error("process.selinuxLabel {0:?}: SELinux is not enabled on this host")]
    SelinuxDisabled(String),
    #[error(
        "linux.mountLabel {0:?}: a label cannot contain a quote (it goes quoted into mount data)"
    )]
    MountLabel(String),
    #[error("apply {what}: {source}")]
    Apply {
        what: &'static str,
        source: procfs::Error,
    },
}

pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .map(|b| b.first() == Some(&b'Y'))
            .unwrap_or(false)
}

pub fn selinux_enabled() -> bool {
    // selinuxfs is mounted (at /sys/fs/selinux) exactly when SELinux is enabled.
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Checks the config against the host before anything is created (in `create`, on the host).
pub fn check(
    profile: Option<&str>,
    label: Option<&str>,
    mount_label: Option<&str>,
) -> Result<(), Error> {
    if let Some(p) = profile.filter(|p| !p.is_empty()) {
        if !apparmor_enabled() {
            return Err(Error::AppArmorDisabled(p.into()));
        }
    }
    if let Some(l) = label.filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(Error::SelinuxDisabled(l.into()));
        }
    }
    if let Some(l) = mount_label.filter(|l| !l.is_empty()) {
        // Quoted in the mount data (an MCS category list has commas, which the quotes protect): only a quote
        // could break out.
        if l.contains('"') {
            return Err(Error::MountLabel(l.into()));
        }
    }
    Ok(())
}

/// Mount data carrying an SELinux context, formatted as runc does: `context="LABEL"` after any other options.
pub fn with_mount_label(data: &str, label: &str) -> String {
    if data.is_empty() {
        format!("context=\"{label}\"")
    } else {
        format!("{data},context=\"{label}\"")
    }
}

/// Sets the profile and label the next execve will switch to (in the init, after pivot_root, /proc being the
/// container's procfs).
pub fn apply_on_exec(profile: Option<&str>, label: Option<&str>) -> Result<(), Error> {
    let profile = profile.filter(|p| !p.is_empty());
    let label = label.filter(|l| !l.is_empty());
    if profile.is_none() && label.is_none() {
        return Ok(());
    }
    let proc = Proc::open(Path::new("/proc")).map_err(|source| Error::Apply {
        what: "LSM attributes",
        source,
    })?;
    let me = procfs::self_dir();
    if let Some(p) = profile {
        // The per-LSM attribute directory when the kernel has it, else the shared one (as libapparmor does).
        let per_lsm = format!("{me}/attr/apparmor/exec");
        let attr = if proc.exists(&per_lsm) {
            per_lsm
        } else {
            format!("{me}/attr/exec")
        };
        proc.write(&attr, &format!("exec {p}"))
            .map_err(|source| Error::Apply {
                what: "apparmor profile",
                source,
            })?;
    }
    if let Some(l) = label {
        proc.write(&format!("{me}/attr/exec"), l)
            .map_err(|source| Error::Apply {
                what: "selinux label",
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_labels_go_after_the_other_mount_data() {
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(
            with_mount_label("", "system_u:object_r:container_file_t:s0"),
            r#"context="system_u:object_r:container_file_t:s0""#
        );
        assert_eq!(
            with_mount_label("mode=755,size=65536k", "l"),
            r#"mode=755,size=65536k,context="l""#
        );
        // A category list has commas, kept inside the quotes; a quote would end them early.
        assert_eq!(
            with_mount_label("mode=755", label),
            r#"mode=755,context="system_u:object_r:container_file_t:s0:c1,c2""#
        );
        assert!(check(None, None, Some(label)).is_ok());
        assert!(matches!(
            check(None, None, Some(r#"l",nosuid"#)),
            Err(Error::MountLabel(_))
        ));
    }
}
