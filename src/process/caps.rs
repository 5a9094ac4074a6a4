//! Capability sets: config names → caps sets, and applying all five in the right order around the uid switch.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown capability {0}")]
    Unknown(String),
    #[error("capability set {set}: berth itself does not hold {caps} (not in its permitted set)")]
    NotHeld { set: &'static str, caps: String },
    #[error("capset (effective, permitted, inheritable): {source} (effective must be within permitted, inheritable within bounding)")]
    Capset { source: nix::Error },
    #[error("{op} capability set {set}: {source}")]
    Apply {
        op: &'static str,
        set: &'static str,
        source: caps::errors::CapsError,
    },
}

/// The five sets as caps-crate sets; names the running kernel does not know are dropped (runc warns and skips them).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

pub fn to_caps(set: &Option<Capabilities>) -> Result<CapsHashSet, Error> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Capability::from_str(&name).map_err(|_| Error::Unknown(name))?;
        out.insert(cap);
    }
    Ok(out)
}

/// Every capability the running kernel knows: one read of cap_last_cap instead of probing each with
/// PR_CAPBSET_READ (which made creating a container cost over a hundred prctl calls).
pub fn supported() -> CapsHashSet {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok());
    match last {
        Some(last) => caps::all()
            .into_iter()
            .filter(|c| c.index() <= last)
            .collect(),
        None => caps::runtime::thread_all_supported(),
    }
}

impl CapSets {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<CapSets, Error> {
        let Some(c) = c else {
            return Ok(CapSets::default());
        };
        let supported = supported();
        let keep =
            |s: CapsHashSet| -> CapsHashSet { s.intersection(&supported).copied().collect() };
        Ok(CapSets {
            bounding: keep(to_caps(c.bounding())?),
            effective: keep(to_caps(c.effective())?),
            permitted: keep(to_caps(c.permitted())?),
            inheritable: keep(to_caps(c.inheritable())?),
            ambient: keep(to_caps(c.ambient())?),
        })
    }

    /// Shrinks the bounding set; needs CAP_SETPCAP, so it runs before the uid switch.
    pub fn drop_bounding(&self) -> Result<(), Error> {
        for cap in supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(|source| Error::Apply {
                    op: "drop from",
                    set: "bounding",
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Sets permitted, inheritable and effective in one capset, then raises each ambient capability on its own,
    /// after the uid switch (which keep-caps survived). Returns a warning for each ambient capability the kernel
    /// refused (one that is not both permitted and inheritable): runc's default config lists ambient capabilities
    /// without an inheritable set, and runc goes on without them.
    pub fn apply_after_setuid(&self) -> Result<Vec<String>, Error> {
        // capset can only keep what we hold: name what is missing rather than fail with a bare EPERM.
        let held = caps::read(None, CapSet::Permitted).map_err(|source| Error::Apply {
            op: "read",
            set: "permitted",
            source,
        })?;
        for (name, want) in [
            ("permitted", &self.permitted),
            ("effective", &self.effective),
        ] {
            let mut missing: Vec<String> = want.difference(&held).map(|c| c.to_string()).collect();
            if !missing.is_empty() {
                missing.sort();
                return Err(Error::NotHeld {
                    set: name,
                    caps: missing.join(", "),
                });
            }
        }
        crate::sys::capset_all(
            mask(&self.effective),
            mask(&self.permitted),
            mask(&self.inheritable),
        )
        .map_err(|source| Error::Capset { source })?;
        caps::clear(None, CapSet::Ambient).map_err(|source| Error::Apply {
            op: "clear",
            set: "ambient",
            source,
        })?;
        let mut ambient: Vec<Capability> = self.ambient.iter().copied().collect();
        ambient.sort_by_key(|c| c.index());
        let mut warnings = Vec::new();
        for cap in ambient {
            if let Err(e) = crate::sys::ambient_raise(cap.index()) {
                warnings.push(format!(
                    "can't raise ambient capability {cap}: {} (it must be permitted and inheritable)",
                    e.desc()
                ));
            }
        }
        Ok(warnings)
    }
}

/// A set as the kernel's bit mask.
fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_translate() {
        let lc: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],"ambient":[]}"#,
        )
        .unwrap();
        let s = CapSets::from_spec(Some(&lc)).unwrap();
        assert_eq!(
            s.bounding,
            [Capability::CAP_CHOWN, Capability::CAP_KILL]
                .into_iter()
                .collect()
        );
        assert_eq!(s.effective, [Capability::CAP_KILL].into_iter().collect());
        assert!(s.permitted.is_empty() && s.ambient.is_empty());
    }

    #[test]
    fn unknown_capability_is_an_error_at_parse_time() {
        let r: Result<LinuxCapabilities, _> = serde_json::from_str(r#"{"bounding":["CAP_BOGUS"]}"#);
        assert!(r.is_err());
    }
}
