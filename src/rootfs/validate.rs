//! Checks of the rootfs part of the config that need no kernel, run by `create` before anything exists.

use oci_spec::runtime::Spec;

use super::{devices, idmap, options, propagation, sysctl, Error};

/// Checks of the rootfs part of the config that need no kernel, run by `create` before anything exists: the
/// propagation, every mount's options, idmap mappings, devices and sysctls.
pub fn validate(spec: &Spec) -> Result<(), Error> {
    propagation::root_propagation(spec)?;
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
