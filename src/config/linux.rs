//! `linux`, translated once: the cgroup path and resources, device nodes, sysctls, seccomp, masked and read-only
//! paths, the root's propagation, the mount label, personality, memory policy and id mappings, each checked here
//! with errors naming their field. `linux.namespaces` and `linux.timeOffsets` are the [`super::Namespaces`] plan.

use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceType, LinuxIdMapping, LinuxMemoryPolicy, LinuxPersonality,
};

use super::mounts::check_ranges;
use super::seccomp::Seccomp;
use super::{mount_options, sysctl, Namespaces, Resources, Sysctl};

/// The `linux` object of a config, validated.
#[derive(Debug, Clone)]
pub struct Linux {
    /// linux.cgroupsPath; `None` when absent or empty (the default path derived from the id).
    pub cgroups_path: Option<PathBuf>,
    /// linux.resources, device rules completed with the ones every container gets.
    pub resources: Resources,
    /// linux.devices, in config order.
    pub devices: Vec<Device>,
    /// linux.sysctl, sorted by key.
    pub sysctl: Vec<Sysctl>,
    /// Compiled (it needs the kernel's syscall tables) by `create` before anything exists.
    /// Compiled once, here.
    pub seccomp: Option<Seccomp>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    /// linux.rootfsPropagation as mount flags; `MS_SLAVE | MS_REC` when absent.
    pub rootfs_propagation: MsFlags,
    /// linux.mountLabel; `None` when absent or empty.
    pub mount_label: Option<String>,
    /// Checked by `attrs::personality`.
    pub personality: Option<LinuxPersonality>,
    /// Checked by `attrs::memory_policy`.
    pub memory_policy: Option<LinuxMemoryPolicy>,
    /// Empty without a user namespace (validation refuses mappings without one).
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
}

/// A device node of `linux.devices`: a path under /dev, its kind, numbers, mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Absolute, under /dev (not /dev itself), no `..`.
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// Permission bits only (0o7777); 0o666 when absent.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Linux {
    /// Translates `linux` (the checks of `validate` and `fields` already passed), the sysctls judged against the
    /// namespace `plan`.
    pub fn from_oci(mut l: oci_spec::runtime::Linux, plan: &Namespaces) -> Result<Linux, String> {
        let devices = l
            .devices_mut()
            .take()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, d)| device(i, d))
            .collect::<Result<_, _>>()?;
        let rootfs_propagation = match l.rootfs_propagation().as_deref() {
            None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
            Some(p) => mount_options::propagation(p).ok_or_else(|| {
                format!(
                    "linux.rootfsPropagation {p:?}: unknown propagation (shared, slave, private or \
                     unbindable, each with or without r)"
                )
            })?,
        };
        let uid_mappings = l.uid_mappings_mut().take().unwrap_or_default();
        let gid_mappings = l.gid_mappings_mut().take().unwrap_or_default();
        // The kernel's rules for a written map, checked before anything exists.
        check_ranges("linux.uidMappings", &uid_mappings)?;
        check_ranges("linux.gidMappings", &gid_mappings)?;
        let paths = |v: Option<Vec<String>>| {
            v.unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect()
        };
        Ok(Linux {
            cgroups_path: l
                .cgroups_path_mut()
                .take()
                .filter(|p| !p.as_os_str().is_empty()),
            resources: Resources::for_create(l.resources_mut().take())?,
            devices,
            sysctl: sysctl::translate(l.sysctl_mut().take(), plan)?,
            seccomp: l.seccomp().as_ref().map(Seccomp::from_oci).transpose()?,
            masked_paths: paths(l.masked_paths_mut().take()),
            readonly_paths: paths(l.readonly_paths_mut().take()),
            rootfs_propagation,
            mount_label: l.mount_label_mut().take().filter(|s| !s.is_empty()),
            personality: l.personality_mut().take(),
            memory_policy: l.memory_policy_mut().take(),
            uid_mappings,
            gid_mappings,
        })
    }
}

/// `linux.devices[i]` as a [`Device`].
fn device(i: usize, d: &LinuxDevice) -> Result<Device, String> {
    let field = format!("linux.devices[{i}]");
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(format!(
                "{field}.type \"a\": only valid in cgroup device rules"
            ))
        }
    };
    let path = d.path();
    let climbs = path.components().any(|c| c == Component::ParentDir);
    if !path.starts_with("/dev") || climbs || path == Path::new("/dev") {
        return Err(format!(
            "{field}.path {path:?}: device paths must be under /dev"
        ));
    }
    let number = |n: i64, what: &str| {
        u64::try_from(n).map_err(|_| format!("{field}.{what} {n}: not a device number"))
    };
    Ok(Device {
        path: path.clone(),
        kind,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(linux: serde_json::Value) -> Result<Linux, String> {
        let l: oci_spec::runtime::Linux = serde_json::from_value(linux).unwrap();
        let plan = Namespaces::from_linux(&l).unwrap();
        Linux::from_oci(l, &plan)
    }

    #[test]
    fn devices_are_typed_and_each_refusal_names_its_field() {
        let l = translate(json!({"devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o100644, "uid": 5},
            {"path": "/dev/sub/fifo", "type": "p"}
        ]}))
        .unwrap();
        assert_eq!(
            l.devices[0],
            Device {
                path: "/dev/fuse".into(),
                kind: SFlag::S_IFCHR,
                major: 10,
                minor: 229,
                mode: 0o644,
                uid: 5,
                gid: 0
            }
        );
        assert_eq!(
            (l.devices[1].kind, l.devices[1].mode),
            (SFlag::S_IFIFO, 0o666)
        );
        for (dev, want) in [
            (
                json!({"path": "/dev/../etc/passwd", "type": "c"}),
                "linux.devices[1].path \"/dev/../etc/passwd\": device paths must be under /dev",
            ),
            (
                json!({"path": "/dev", "type": "c"}),
                "linux.devices[1].path \"/dev\": device paths must be under /dev",
            ),
            (
                json!({"path": "/devices/x", "type": "c"}),
                "linux.devices[1].path \"/devices/x\"",
            ),
            (
                json!({"path": "/dev/x", "type": "a"}),
                "linux.devices[1].type \"a\": only valid in cgroup device rules",
            ),
            (
                json!({"path": "/dev/x", "type": "c", "major": -1}),
                "linux.devices[1].major -1: not a device number",
            ),
            (
                json!({"path": "/dev/x", "type": "b", "minor": -3}),
                "linux.devices[1].minor -3: not a device number",
            ),
        ] {
            let e =
                translate(json!({"devices": [{"path": "/dev/ok", "type": "c"}, dev]})).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn id_mappings_follow_the_kernels_rules() {
        let user = |uid: serde_json::Value, gid: serde_json::Value| {
            translate(
                json!({"namespaces": [{"type": "user"}], "uidMappings": uid, "gidMappings": gid}),
            )
        };
        let one = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let l = user(one.clone(), one.clone()).unwrap();
        assert_eq!(
            (l.uid_mappings.len(), l.gid_mappings[0].host_id()),
            (1, 1000)
        );
        let e = user(
            json!([{"containerID": 0, "hostID": 1000, "size": 0}]),
            one.clone(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("linux.uidMappings: range 0 1000 0 is empty"),
            "{e}"
        );
        let overlapping = json!([
            {"containerID": 0, "hostID": 1000, "size": 10},
            {"containerID": 5, "hostID": 5000, "size": 10}
        ]);
        let e = user(one, overlapping).unwrap_err();
        assert!(
            e.starts_with("linux.gidMappings: ranges 5 5000 10 and 0 1000 10 overlap"),
            "{e}"
        );
    }

    #[test]
    fn propagation_is_parsed_and_names_its_field() {
        let slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        assert_eq!(translate(json!({})).unwrap().rootfs_propagation, slave);
        assert_eq!(
            translate(json!({"rootfsPropagation": ""}))
                .unwrap()
                .rootfs_propagation,
            slave
        );
        assert_eq!(
            translate(json!({"rootfsPropagation": "private"}))
                .unwrap()
                .rootfs_propagation,
            MsFlags::MS_PRIVATE
        );
        let e = translate(json!({"rootfsPropagation": "sideways"})).unwrap_err();
        assert!(
            e.starts_with("linux.rootfsPropagation \"sideways\": unknown propagation"),
            "{e}"
        );
    }

    #[test]
    fn empty_strings_mean_absent_and_sysctls_and_resources_are_checked() {
        let l =
            translate(json!({"cgroupsPath": "", "mountLabel": "", "maskedPaths": ["/proc/kcore"]}))
                .unwrap();
        assert!(l.cgroups_path.is_none() && l.mount_label.is_none());
        assert_eq!(l.masked_paths, [PathBuf::from("/proc/kcore")]);
        let e = translate(json!({"sysctl": {"kernel.pid_max": "1"}})).unwrap_err();
        assert!(e.starts_with("linux.sysctl \"kernel.pid_max\""), "{e}");
        let e = translate(json!({"resources": {"memory": {"swappiness": 200}}})).unwrap_err();
        assert!(e.starts_with("linux.resources.memory.swappiness"), "{e}");
    }
}
