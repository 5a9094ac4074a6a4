//! Switching to the configured uid, gid and supplementary groups without losing the capabilities to keep.

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use crate::config::User;

#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct Error {
    op: String,
    source: nix::Error,
}

fn err(op: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let op = op.into();
    move |source| Error { op, source }
}

/// `setgroups_allowed` is false in a user namespace whose setgroups file says deny.
pub fn switch(user: &User, setgroups_allowed: bool) -> Result<(), Error> {
    nix::sys::prctl::set_keepcaps(true).map_err(err("prctl(PR_SET_KEEPCAPS)"))?;
    let gids: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    if setgroups_allowed {
        setgroups(&gids).map_err(err(format!("setgroups {:?}", user.additional_gids)))?;
    } else if !gids.is_empty() {
        // Accepted and not applied would be a lie (runc refuses too): a rootless gid map denies setgroups(2).
        return Err(Error {
            op: format!(
                "additionalGids {:?}: setgroups is denied in this user namespace (rootless)",
                user.additional_gids
            ),
            source: nix::errno::Errno::EPERM,
        });
    }
    let gid = Gid::from_raw(user.gid);
    setresgid(gid, gid, gid).map_err(err(format!("setresgid {gid}")))?;
    let uid = Uid::from_raw(user.uid);
    setresuid(uid, uid, uid).map_err(err(format!("setresuid {uid}")))?;
    nix::sys::prctl::set_keepcaps(false).map_err(err("prctl(PR_SET_KEEPCAPS, 0)"))
}
