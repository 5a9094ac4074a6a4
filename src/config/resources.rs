//! `linux.resources`, checked once: every value no kernel would accept is refused here, naming its field
//! (`linux.resources.memory.swap: ...`), for `create` at load and for `update` before anything is written. What
//! needs the host (is the controller there, cgroup v1 or v2, the usage or limit in force) stays in `cgroups`.

use std::collections::HashMap;
use std::ops::Deref;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// Validated resources. The limits stay oci-spec's `LinuxResources`: each is optional in the spec and an absent
/// one means "leave the kernel's value", so a berth copy would only repeat the same `Option`s; what the newtype
/// adds is the guarantee that every value passed the checks below, and the device rules in their parsed form
/// ([`DeviceRule`]; the inner `devices` is always `None`, [`Resources::devices`] reads them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    limits: LinuxResources,
    devices: Option<Vec<DeviceRule>>,
}

impl Deref for Resources {
    type Target = LinuxResources;
    fn deref(&self) -> &LinuxResources {
        &self.limits
    }
}

impl Resources {
    /// `create`'s resources: the config's (absent: none), with the device rules completed by the devices every
    /// container gets. A node of `linux.devices` gets no rule of its own (as in runc): `linux.resources.devices`
    /// alone decides whether the container may use it, so a denied device stays denied even when it is listed.
    pub fn for_create(r: Option<LinuxResources>) -> Result<Resources, String> {
        let mut r = Resources::check(r.unwrap_or_default())?;
        let rules = r.devices.get_or_insert_with(Vec::new);
        rules.extend(default_device_rules());
        Ok(r)
    }

    /// `update`'s resources: device rules are fixed at create time and ignored (as runc ignores them).
    pub fn for_update(mut r: LinuxResources) -> Result<Resources, String> {
        r.set_devices(None);
        Resources::check(r)
    }

    fn check(mut limits: LinuxResources) -> Result<Resources, String> {
        let devices = limits
            .devices_mut()
            .take()
            .map(|rules| parse_device_rules(&rules))
            .transpose()?;
        check_limits(&limits)?;
        Ok(Resources { limits, devices })
    }

    /// The device rules, in order (the last matching rule decides).
    pub fn devices(&self) -> Option<&[DeviceRule]> {
        self.devices.as_deref()
    }

    /// The same without device rules.
    pub fn without_devices(&self) -> Resources {
        Resources {
            limits: self.limits.clone(),
            devices: None,
        }
    }

    /// Only the device rules.
    pub fn only_devices(&self) -> Resources {
        Resources {
            limits: LinuxResources::default(),
            devices: self.devices.clone(),
        }
    }

    /// Asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self.devices.is_none() && self.limits == LinuxResources::default()
    }
}

fn bad(field: &str, reason: String) -> String {
    format!("linux.resources.{field}: {reason}")
}

/// The checks of the limits that need no kernel.
fn check_limits(r: &LinuxResources) -> Result<(), String> {
    if let Some(m) = r.memory() {
        // 0 means "not set" for the sizes, as in runc.
        let limit = m.limit().filter(|v| *v != 0);
        let swap = m.swap().filter(|v| *v != 0);
        if let Some(s) = swap.filter(|s| *s < -1) {
            return Err(bad("memory.swap", format!("{s} is not a size")));
        }
        if let (Some(s), Some(l)) = (swap, limit) {
            if s > 0 && l > 0 && s < l {
                return Err(bad(
                    "memory.swap",
                    format!("memory+swap ({s}) must not be below the memory limit ({l})"),
                ));
            }
        }
        if let Some(sw) = m.swappiness().filter(|sw| *sw > 100) {
            return Err(bad("memory.swappiness", format!("{sw} is not in 0..100")));
        }
    }
    if let Some(c) = r.cpu() {
        // The kernel's bounds of a CFS period (1ms..1s) and of a quota (at least 1ms), in microseconds.
        if let Some(p) = c.period().filter(|p| *p != 0) {
            if !(1_000..=1_000_000).contains(&p) {
                return Err(bad(
                    "cpu.period",
                    format!("{p} is not in 1000..1000000 (microseconds)"),
                ));
            }
        }
        if let Some(q) = c.quota().filter(|q| (1..1_000).contains(q)) {
            return Err(bad(
                "cpu.quota",
                format!("{q} is below the kernel's minimum of 1000 (microseconds)"),
            ));
        }
    }
    if let Some(b) = r.block_io() {
        let weight = |field: &str, w: Option<u16>, what: String| match w {
            Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                Err(bad(field, format!("weight {w}{what} is not in 10..1000")))
            }
            _ => Ok(()),
        };
        weight("blockIO.weight", b.weight(), String::new())?;
        for d in b.weight_device().iter().flatten() {
            let of = format!(" of {}:{}", d.major(), d.minor());
            weight("blockIO.weightDevice", d.weight(), of)?;
        }
    }
    for l in r.hugepage_limits().iter().flatten() {
        hugepage_size(l.page_size())?;
    }
    if let Some(rdma) = r.rdma() {
        check_rdma(rdma)?;
    }
    for key in r.unified().iter().flat_map(HashMap::keys) {
        check_unified_key(key)?;
    }
    Ok(())
}

/// A hugepage size the kernel could name: a number and a KB/MB/GB unit ("2MB", "1GB").
fn hugepage_size(size: &str) -> Result<(), String> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(bad(
            "hugepageLimits",
            format!("page size {size:?} is not like 2MB or 1GB"),
        ));
    }
    Ok(())
}

/// The kernel parses an rdma limit as an int; "max" is i32::MAX.
const RDMA_MAX: u32 = i32::MAX as u32;

fn check_rdma(limits: &HashMap<String, oci_spec::runtime::LinuxRdma>) -> Result<(), String> {
    let mut devs: Vec<_> = limits.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        for (field, value) in [
            ("hcaHandles", l.hca_handles()),
            ("hcaObjects", l.hca_objects()),
        ] {
            if let Some(v) = value.filter(|v| *v > RDMA_MAX) {
                return Err(bad(
                    "rdma",
                    format!("{dev:?}: {field} {v} is more than the kernel's {RDMA_MAX}"),
                ));
            }
        }
    }
    Ok(())
}

/// A `unified` key must be a plain file name of the cgroup (no `/`, no `..`), `controller.name`, and never one of
/// the core files that move processes or change the hierarchy. Whether the file exists is the host's to say.
pub fn check_unified_key(key: &str) -> Result<(), String> {
    let refuse = |reason: &str| Err(bad("unified", format!("key {key:?}: {reason}")));
    if key.is_empty() || key.contains('/') || key.contains('\0') || key == "." || key == ".." {
        return refuse("must be a file name of the cgroup (no /, no ..)");
    }
    let Some((controller, _)) = key.split_once('.') else {
        return refuse("is not a cgroup interface file (controller.name)");
    };
    if controller == "cgroup"
        && matches!(
            key,
            "cgroup.procs"
                | "cgroup.threads"
                | "cgroup.subtree_control"
                | "cgroup.type"
                | "cgroup.kill"
        )
    {
        return refuse("is managed by berth itself");
    }
    Ok(())
}

/// One device cgroup rule, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// 'a' (every device), 'b' or 'c'.
    pub kind: char,
    /// None: any.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Bits of [`ACC_MKNOD`], [`ACC_READ`], [`ACC_WRITE`].
    pub access: u32,
}

pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

impl DeviceRule {
    /// One rule of `linux.resources.devices`; the error is the reason, without the field.
    pub fn from_oci(r: &LinuxDeviceCgroup) -> Result<DeviceRule, String> {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            // 'u' (unbuffered character) is a character device to the kernel.
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::P => {
                return Err(format!(
                "rule {r}: type p (fifo) is not a device type the device cgroup knows (a, b or c)"
            ))
            }
        };
        let num = |v: Option<i64>, what: &str| match v {
            None | Some(-1) => Ok(None),
            Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(format!("rule {r}: {what} {n} is not a device number")),
        };
        let access = parse_access(r.access().as_deref().unwrap_or(""))
            .map_err(|e| format!("rule {r}: {e}"))?;
        Ok(DeviceRule {
            allow: r.allow(),
            kind,
            major: num(r.major(), "major")?,
            minor: num(r.minor(), "minor")?,
            access,
        })
    }
}

/// Parses `linux.resources.devices`, each error naming its rule (`linux.resources.devices[2]: ...`).
pub fn parse_device_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, String> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| DeviceRule::from_oci(r).map_err(|e| bad(&format!("devices[{i}]"), e)))
        .collect()
}

/// An access string: any combination of r, w, m; missing or empty means all three. runc also takes an `a`
/// ("rwa" is in its own tests) and ignores it, as it ignores every letter but r, w, m; berth ignores `a` alone
/// (it never widens the access) and refuses other letters, and a string that names none of r, w, m.
fn parse_access(s: &str) -> Result<u32, String> {
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    let mut access = 0;
    for c in s.chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            'a' => 0,
            _ => return Err(format!("access {c:?} is not one of r, w, m")),
        };
    }
    if access == 0 {
        return Err(format!("access {s:?} names none of r, w, m"));
    }
    Ok(access)
}

/// What every container may use, as runc allows it: mknod of anything, the standard /dev nodes, the pty
/// multiplexer and its slaves, and /dev/net/tun.
pub fn default_device_rules() -> Vec<DeviceRule> {
    let rule = |kind, major, minor, access| DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access,
    };
    let mut v = vec![
        rule('c', None, None, ACC_MKNOD),
        rule('b', None, None, ACC_MKNOD),
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        v.push(rule('c', Some(major), Some(minor), ACC_ALL));
    }
    v.push(rule('c', Some(136), None, ACC_ALL));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: serde_json::Value) -> Result<Resources, String> {
        Resources::for_create(Some(serde_json::from_value(json).unwrap()))
    }

    #[test]
    fn each_refusal_names_its_field() {
        use serde_json::json;
        for (r, want) in [
            (
                json!({"memory": {"limit": 200, "swap": 100}}),
                "linux.resources.memory.swap: memory+swap (100) must not be below the memory limit (200)",
            ),
            (
                json!({"memory": {"swap": -2}}),
                "linux.resources.memory.swap: -2 is not a size",
            ),
            (
                json!({"memory": {"swappiness": 101}}),
                "linux.resources.memory.swappiness: 101 is not in 0..100",
            ),
            (
                json!({"cpu": {"period": 10}}),
                "linux.resources.cpu.period: 10 is not in 1000..1000000",
            ),
            (
                json!({"cpu": {"quota": 999}}),
                "linux.resources.cpu.quota: 999 is below",
            ),
            (
                json!({"blockIO": {"weight": 5}}),
                "linux.resources.blockIO.weight: weight 5 is not in 10..1000",
            ),
            (
                json!({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 1001}]}}),
                "linux.resources.blockIO.weightDevice: weight 1001 of 8:0 is not in 10..1000",
            ),
            (
                json!({"hugepageLimits": [{"pageSize": "2TB", "limit": 1}]}),
                "linux.resources.hugepageLimits: page size \"2TB\" is not like 2MB or 1GB",
            ),
            (
                json!({"rdma": {"rxe0": {"hcaObjects": 2147483648u32}}}),
                "linux.resources.rdma: \"rxe0\": hcaObjects 2147483648 is more than the kernel's 2147483647",
            ),
            (
                json!({"unified": {"../memory.max": "1"}}),
                "linux.resources.unified: key \"../memory.max\": must be a file name",
            ),
            (
                json!({"devices": [{"allow": true}, {"allow": true, "type": "c", "access": "rwx"}]}),
                "linux.resources.devices[1]: rule ",
            ),
        ] {
            let e = check(r.clone()).unwrap_err();
            assert!(e.starts_with(want), "{r}: {e}");
        }
    }

    #[test]
    fn sane_values_pass_and_zero_means_unset() {
        use serde_json::json;
        check(json!({
            "memory": {"limit": 100, "swap": 300, "swappiness": 100},
            "cpu": {"quota": -1, "period": 100000},
            "blockIO": {"weight": 0},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}],
            "unified": {"memory.high": "1000", "cgroup.freeze": "0"}
        }))
        .unwrap();
        check(json!({"memory": {"limit": 100, "swap": -1}, "cpu": {"quota": 0, "period": 0}}))
            .unwrap();
        // A swap without a limit is judged against the limit in force, which only the host knows.
        check(json!({"memory": {"swap": 100}})).unwrap();
    }

    #[test]
    fn create_completes_the_device_rules_and_update_drops_them() {
        let r = Resources::for_create(None).unwrap();
        assert_eq!(r.devices().unwrap(), default_device_rules());
        assert!(r.limits.devices().is_none());
        let with_rules: LinuxResources = serde_json::from_str(
            r#"{"devices":[{"allow":false,"access":"rwm"}],"pids":{"limit":3}}"#,
        )
        .unwrap();
        let r = Resources::for_create(Some(with_rules.clone())).unwrap();
        assert_eq!(r.devices().unwrap().len(), 1 + default_device_rules().len());
        assert!(!r.devices().unwrap()[0].allow);
        let u = Resources::for_update(with_rules).unwrap();
        assert!(u.devices().is_none());
        assert_eq!(u.pids().as_ref().unwrap().limit(), 3);
        assert!(u.only_devices().is_empty() && !u.is_empty());
    }

    #[test]
    fn access_strings() {
        for (s, want) in [
            ("", ACC_ALL),
            ("rwm", ACC_ALL),
            ("mwr", ACC_ALL),
            ("r", ACC_READ),
            ("wm", ACC_WRITE | ACC_MKNOD),
            ("rr", ACC_READ),
            // runc's update.bats "minimal transition rules": `a` is no access of its own.
            ("rwa", ACC_READ | ACC_WRITE),
            ("am", ACC_MKNOD),
        ] {
            assert_eq!(parse_access(s), Ok(want), "{s:?}");
        }
        for s in ["rwx", "R", "a", "aa", " r", "rw,m"] {
            assert!(parse_access(s).is_err(), "{s:?}");
        }
        assert!(parse_access("a")
            .unwrap_err()
            .contains("names none of r, w, m"));
        assert!(parse_access("rx").unwrap_err().contains("access 'x'"));
    }

    #[test]
    fn bad_device_rules_name_their_index() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":true,"type":"c","major":1,"minor":3,"access":"r"},
                {"allow":true,"type":"p","access":"rwm"},
                {"allow":true,"type":"c","major":-5,"access":"r"}]"#,
        )
        .unwrap();
        let e = parse_device_rules(&rules).unwrap_err();
        assert!(
            e.starts_with("linux.resources.devices[1]: rule ") && e.contains("fifo"),
            "{e}"
        );
        let e = parse_device_rules(&rules[2..]).unwrap_err();
        assert!(
            e.starts_with("linux.resources.devices[0]: ")
                && e.contains("major -5 is not a device number"),
            "{e}"
        );
        let ok = parse_device_rules(&rules[..1]).unwrap();
        assert_eq!(
            ok[0],
            DeviceRule {
                allow: true,
                kind: 'c',
                major: Some(1),
                minor: Some(3),
                access: ACC_READ
            }
        );
    }

    #[test]
    fn unified_keys_are_plain_interface_files() {
        for ok in [
            "memory.high",
            "pids.max",
            "cpu.weight.nice",
            "io.bfq.weight",
            "cgroup.freeze",
        ] {
            check_unified_key(ok).unwrap();
        }
        for bad in [
            "",
            "..",
            ".",
            "../memory.max",
            "memory/max",
            "/etc/passwd",
            "nodot",
            "cgroup.procs",
            "cgroup.subtree_control",
        ] {
            assert!(check_unified_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hugepage_sizes() {
        for ok in ["2MB", "1GB", "64KB"] {
            hugepage_size(ok).unwrap();
        }
        for bad in ["", "MB", "2", "2mb", "2 MB", "../x", "2TB"] {
            assert!(hugepage_size(bad).is_err(), "{bad}");
        }
    }
}
