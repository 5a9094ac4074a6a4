//! config.json's `mounts`, translated once: options parsed, the checks that need no kernel done (idmap rules, id
//! ranges, tmpcopyup), each error naming `mounts[i]`. What needs the kernel or the rootfs stays in `rootfs`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{self as oci, Linux, LinuxIdMapping, LinuxNamespaceType};

use super::mount_options::{self, MountOptions};

/// One entry of `mounts`, validated.
#[derive(Debug, Clone)]
pub struct Mount {
    pub destination: PathBuf,
    /// Empty when the config gives none; a relative bind source is already anchored to the bundle.
    pub source: PathBuf,
    /// `type`, empty when the config gives none.
    pub fstype: String,
    pub options: MountOptions,
    /// A bind: `type` bind, or a `bind`/`rbind` option.
    pub bind: bool,
    /// The mappings of an idmapped bind (`idmap`/`ridmap` or mappings of its own); None for any other mount.
    pub idmap: Option<Mapping>,
}

impl Mount {
    /// A mount berth adds itself (the /dev tmpfs when the config has none).
    pub fn new(destination: &str, fstype: &str, source: &str, options: &[&str]) -> Mount {
        let words: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        let options = mount_options::parse(&words);
        Mount {
            destination: destination.into(),
            source: source.into(),
            bind: options.bind || fstype == "bind",
            fstype: fstype.into(),
            options,
            idmap: None,
        }
    }
}

/// Translates `mounts` (destinations already checked not empty by `validate`), in order. A relative destination
/// is relative to `/` (runtime-spec: deprecated, but a runtime MUST read it so; runc does).
pub fn translate(mounts: Option<Vec<oci::Mount>>, linux: &Linux) -> Result<Vec<Mount>, String> {
    let mounts = mounts.unwrap_or_default();
    let mut out = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        let invalid = |reason: String| format!("mounts[{i}] {:?}: {reason}", m.destination());
        let options = mount_options::parse(m.options().as_deref().unwrap_or(&[]));
        let fstype = m.typ().clone().unwrap_or_default();
        let bind = options.bind || fstype == "bind";
        let idmap = if is_idmapped(m, &options) {
            if !bind {
                return Err(invalid(
                    "idmap and uidMappings/gidMappings need a bind mount".into(),
                ));
            }
            Some(mapping_for(linux, m).map_err(invalid)?)
        } else {
            None
        };
        if options.tmpcopyup && fstype != "tmpfs" {
            return Err(invalid("tmpcopyup is only valid for tmpfs".into()));
        }
        out.push(Mount {
            destination: Path::new("/").join(m.destination()),
            source: m.source().clone().unwrap_or_default(),
            fstype,
            options,
            bind,
            idmap,
        });
    }
    Ok(out)
}

/// The kernel's limit on the lines of one uid_map or gid_map.
const MAX_EXTENTS: usize = 340;

/// Whose mappings an idmapped mount carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// The mount's own uidMappings and gidMappings, in the kernel's map format.
    Own { uid: String, gid: String },
    /// None given: the container's user namespace (as runc does).
    Container,
}

/// Is this mount idmapped: `idmap`/`ridmap`, or mappings of its own (runc idmaps those too)?
fn is_idmapped(m: &oci::Mount, opts: &MountOptions) -> bool {
    opts.idmap.is_some() || has_own(m.uid_mappings()) || has_own(m.gid_mappings())
}

fn has_own(v: &Option<Vec<LinuxIdMapping>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// The mappings of an idmapped mount: its own, else the container's user namespace.
fn mapping_for(linux: &Linux, m: &oci::Mount) -> Result<Mapping, String> {
    match (m.uid_mappings(), m.gid_mappings()) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => {
            check_ranges("uidMappings", u)?;
            check_ranges("gidMappings", g)?;
            Ok(Mapping::Own {
                uid: render(u),
                gid: render(g),
            })
        }
        (u, g) if has_own(u) || has_own(g) => {
            Err("uidMappings and gidMappings must be given together".into())
        }
        _ if has_user_ns(linux) => Ok(Mapping::Container),
        _ => Err(
            "an idmapped mount needs uidMappings and gidMappings, on the mount or through a container user \
             namespace"
                .into(),
        ),
    }
}

fn has_user_ns(linux: &Linux) -> bool {
    linux
        .namespaces()
        .as_ref()
        .is_some_and(|nss| nss.iter().any(|n| n.typ() == LinuxNamespaceType::User))
}

/// The rules the kernel applies to a written id map, checked before anything exists: at most 340 lines, no empty
/// or overflowing range, and no two ranges overlapping on either side.
pub fn check_ranges(what: &str, maps: &[LinuxIdMapping]) -> Result<(), String> {
    if maps.len() > MAX_EXTENTS {
        return Err(format!(
            "{what}: {} ranges, the kernel takes at most {MAX_EXTENTS}",
            maps.len()
        ));
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        let (c, h, n) = (m.container_id(), m.host_id(), m.size());
        if n == 0 {
            return Err(format!("{what}: range {c} {h} {n} is empty"));
        }
        if end(c, n) > u64::from(u32::MAX) || end(h, n) > u64::from(u32::MAX) {
            return Err(format!("{what}: range {c} {h} {n} goes past id 4294967294"));
        }
        for o in &maps[..i] {
            let overlap =
                |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, n);
            if overlap(c, o.container_id()) || overlap(h, o.host_id()) {
                return Err(format!(
                    "{what}: ranges {c} {h} {n} and {} {} {} overlap",
                    o.container_id(),
                    o.host_id(),
                    o.size()
                ));
            }
        }
    }
    Ok(())
}

/// Renders mappings in the kernel's `inside outside count` line format.
pub fn render(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(v: serde_json::Value) -> Linux {
        serde_json::from_value(v).unwrap()
    }

    fn mount(v: serde_json::Value) -> oci::Mount {
        serde_json::from_value(v).unwrap()
    }

    fn maps(v: serde_json::Value) -> Vec<LinuxIdMapping> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn mount_maps_win_then_the_container_user_namespace() {
        let m = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 5}]
        }));
        let s = linux(serde_json::json!({}));
        assert_eq!(
            mapping_for(&s, &m).unwrap(),
            Mapping::Own {
                uid: "0 1000 10\n".into(),
                gid: "0 2000 5\n".into()
            }
        );
        let bare = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]
        }));
        assert!(mapping_for(&s, &bare)
            .unwrap_err()
            .contains("user namespace"));
        let new_userns = linux(serde_json::json!({
            "namespaces": [{"type": "user"}, {"type": "mount"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }));
        assert_eq!(mapping_for(&new_userns, &bare).unwrap(), Mapping::Container);
        // A joined user namespace carries its mappings too (runc passes its path).
        let joined = linux(serde_json::json!({
            "namespaces": [{"type": "user", "path": "/proc/1/ns/user"}, {"type": "mount"}]
        }));
        assert_eq!(mapping_for(&joined, &bare).unwrap(), Mapping::Container);
        let half = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]
        }));
        assert!(mapping_for(&new_userns, &half)
            .unwrap_err()
            .contains("together"));
        let bad = mount(serde_json::json!({
            "destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                            {"containerID": 5, "hostID": 5000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 5}]
        }));
        assert!(mapping_for(&new_userns, &bad)
            .unwrap_err()
            .contains("overlap"));
    }

    #[test]
    fn idmapped_means_an_option_or_mappings_of_its_own() {
        let userns = linux(serde_json::json!({"namespaces": [{"type": "user"}]}));
        let with = |v: serde_json::Value| {
            let t = translate(Some(vec![mount(v)]), &userns).unwrap();
            t[0].idmap.is_some()
        };
        assert!(with(
            serde_json::json!({"destination": "/m", "source": "/s", "options": ["rbind", "ridmap"]})
        ));
        assert!(with(
            serde_json::json!({"destination": "/m", "source": "/s", "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
        ));
        assert!(!with(
            serde_json::json!({"destination": "/m", "source": "/s", "options": ["rbind"]})
        ));
    }

    #[test]
    fn translate_checks_name_the_mount() {
        let l = linux(serde_json::json!({}));
        let err = |v: serde_json::Value| translate(Some(vec![mount(v)]), &l).unwrap_err();
        let e =
            err(serde_json::json!({"destination": "/m", "type": "tmpfs", "options": ["idmap"]}));
        assert_eq!(
            e,
            r#"mounts[0] "/m": idmap and uidMappings/gidMappings need a bind mount"#
        );
        let e = err(
            serde_json::json!({"destination": "/t", "type": "bind", "source": "/s",
            "options": ["bind", "tmpcopyup"]}),
        );
        assert_eq!(e, r#"mounts[0] "/t": tmpcopyup is only valid for tmpfs"#);
        let e = err(
            serde_json::json!({"destination": "/m", "source": "/s", "options": ["bind", "idmap"]}),
        );
        assert!(
            e.starts_with(r#"mounts[0] "/m": an idmapped mount needs"#),
            "{e}"
        );
        let ok = translate(
            Some(vec![mount(
                serde_json::json!({"destination": "/d", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "mode=755", "rslave"]}),
            )]),
            &l,
        )
        .unwrap();
        assert_eq!(ok[0].options.data, "mode=755");
        assert!(!ok[0].bind && ok[0].idmap.is_none() && ok[0].fstype == "tmpfs");
    }

    #[test]
    fn ranges_follow_the_kernels_rules() {
        let ok = |v| check_ranges("uidMappings", &maps(v));
        ok(
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536},
            {"containerID": 65536, "hostID": 0, "size": 1}]),
        )
        .unwrap();
        // Adjacent is not overlapping.
        ok(
            serde_json::json!([{"containerID": 0, "hostID": 10, "size": 10},
            {"containerID": 10, "hostID": 20, "size": 10}]),
        )
        .unwrap();
        ok(serde_json::json!([{"containerID": 0, "hostID": 0, "size": 4294967295u32}])).unwrap();
        for (bad, want) in [
            (
                serde_json::json!([{"containerID": 0, "hostID": 1, "size": 0}]),
                "empty",
            ),
            (
                serde_json::json!([{"containerID": 1, "hostID": 1, "size": 4294967295u32}]),
                "past",
            ),
            (
                serde_json::json!([{"containerID": 0, "hostID": 100, "size": 10},
                {"containerID": 9, "hostID": 200, "size": 1}]),
                "overlap",
            ),
            (
                serde_json::json!([{"containerID": 0, "hostID": 100, "size": 10},
                {"containerID": 50, "hostID": 95, "size": 10}]),
                "overlap",
            ),
        ] {
            let err = ok(bad).unwrap_err();
            assert!(
                err.contains(want) && err.starts_with("uidMappings"),
                "{err}"
            );
        }
        let many: Vec<_> = (0..341)
            .map(|i| serde_json::json!({"containerID": i, "hostID": 1000 + i, "size": 1}))
            .collect();
        assert!(ok(serde_json::Value::Array(many))
            .unwrap_err()
            .contains("340"));
    }
}
