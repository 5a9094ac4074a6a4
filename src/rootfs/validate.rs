//! Checks of the rootfs part of the config left to rootfs (`mounts` are checked at load, in `config`), run by
//! `create` before anything exists.

use super::{devices, propagation, sysctl, Error};
use crate::config::Config;

/// Checks of the rootfs part of the config that need no kernel, run by `create` before anything exists: the
/// propagation, devices and sysctls.
pub fn validate(config: &Config) -> Result<(), Error> {
    let linux = &config.linux;
    propagation::root_propagation(linux)?;
    for d in devices::of(linux) {
        devices::node_from_spec(d)?;
    }
    sysctl::validate(linux)?;
    Ok(())
}
