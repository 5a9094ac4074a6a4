//! Fields of runtime-spec 1.3 that berth does not apply are refused here, by name, before anything is made: a
//! field accepted must have an effect (README, "Config fields"). `process`'s are refused by its translation
//! (`process.rs`).

use oci_spec::runtime::{Linux, Spec};

pub fn check(spec: &Spec, linux: &Linux) -> Result<(), String> {
    let other_platform = [
        ("solaris", spec.solaris().is_some()),
        ("windows", spec.windows().is_some()),
        ("vm", spec.vm().is_some()),
        ("zos", spec.zos().is_some()),
    ];
    if let Some((name, _)) = other_platform.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{name} is set: berth runs Linux containers and applies no {name} settings"
        ));
    }
    if linux.intel_rdt().is_some() {
        return Err(if resctrl_mounted() {
            "linux.intelRdt: not supported by berth (resctrl is mounted on this host, but berth does not manage \
             it)"
                .into()
        } else {
            // runc's words.
            "intelRdt is specified in config, but Intel RDT is not enabled".into()
        });
    }
    if let Some(mp) = linux.memory_policy() {
        super::attrs::memory_policy(mp)?;
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(
            "linux.netDevices: not supported by berth (no network device is moved into the \
                    container)"
                .into(),
        );
    }
    if let Some(p) = linux.personality() {
        super::attrs::personality(p)?;
    }
    Ok(())
}

/// Is a resctrl filesystem mounted (what runc calls "Intel RDT enabled")?
fn resctrl_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.contains(" - resctrl ")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_linux(extra: &str) -> Result<(), String> {
        let raw = format!(
            r#"{{"ociVersion":"1.3.0","root":{{"path":"r"}},"process":{{"cwd":"/","args":["sh"],
            "user":{{"uid":0,"gid":0}}}},"linux":{{{extra}}}}}"#
        );
        let spec: Spec = serde_json::from_str(&raw).unwrap();
        check(&spec, spec.linux().as_ref().unwrap())
    }

    #[test]
    fn unapplied_fields_are_refused_by_name() {
        check_linux("").unwrap();
        for (extra, name) in [
            (
                r#""memoryPolicy":{"mode":"MPOL_BIND"}"#,
                "linux.memoryPolicy",
            ),
            (r#""netDevices":{"eth1":{"name":"x"}}"#, "linux.netDevices"),
            (
                r#""personality":{"domain":"LINUX","flags":["X"]}"#,
                "linux.personality.flags",
            ),
            (r#""intelRdt":{"closID":"x"}"#, "ntel"),
        ] {
            let e = check_linux(extra).unwrap_err();
            assert!(e.contains(name), "{extra}: {e}");
        }
        check_linux(r#""personality":{"domain":"LINUX32"}"#).unwrap();
    }
}
