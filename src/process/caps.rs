//! Capability sets: the config's (`config::Capabilities`, names read at translation) less what the running kernel
//! does not know, and applying all five in the right order around the uid switch.

use caps::{CapSet, Capability, CapsHashSet};

use crate::config::Capabilities;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// The config's sets, less the capabilities the running kernel does not know.
    pub fn for_kernel(c: &Capabilities) -> CapSets {
        CapSets::within(c, &supported())
    }

    fn within(c: &Capabilities, supported: &CapsHashSet) -> CapSets {
        let keep =
            |s: &CapsHashSet| -> CapsHashSet { s.intersection(supported).copied().collect() };
        CapSets {
            bounding: keep(&c.bounding),
            effective: keep(&c.effective),
            permitted: keep(&c.permitted),
            inheritable: keep(&c.inheritable),
            ambient: keep(&c.ambient),
        }
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
    fn capabilities_the_kernel_does_not_know_are_dropped() {
        let all = |caps: &[Capability]| caps.iter().copied().collect::<CapsHashSet>();
        let config = Capabilities {
            bounding: all(&[Capability::CAP_CHOWN, Capability::CAP_BPF]),
            effective: all(&[Capability::CAP_BPF]),
            ambient: all(&[Capability::CAP_KILL]),
            ..Default::default()
        };
        // A kernel older than CAP_BPF (5.8).
        let kernel = all(&[Capability::CAP_CHOWN, Capability::CAP_KILL]);
        let s = CapSets::within(&config, &kernel);
        assert_eq!(s.bounding, all(&[Capability::CAP_CHOWN]));
        assert!(s.effective.is_empty() && s.permitted.is_empty() && s.inheritable.is_empty());
        assert_eq!(s.ambient, all(&[Capability::CAP_KILL]));
    }
}
