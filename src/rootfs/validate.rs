//! The check of the rootfs part of the config left to rootfs, because it needs the kernel (everything else, mounts,
//! devices, propagation and sysctl names included, is checked at load, in `config`), run by `create` before
//! anything exists.

use super::{sysctl, Error};
use crate::config::Config;

/// A network sysctl must not reach berth's own network namespace.
pub fn validate(config: &Config) -> Result<(), Error> {
    sysctl::validate(config)?;
    Ok(())
}
