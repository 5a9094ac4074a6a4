//! Bundles built to make berth touch the host: symlinked mount destinations (absolute and `../` chains), a
//! symlinked /proc, masked paths swapped for links to host files, missing bind sources, bad propagation and
//! devices. Each test proves the host side was not touched: a marker directory outside the bundle keeps its
//! content, gets no new entries and nothing is mounted on it, and no mount is left under the bundle.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

/// A directory on the host that hostile bundles point at.
struct Marker {
    dir: PathBuf,
}

impl Marker {
    fn new(name: &str) -> Marker {
        let dir = std::env::temp_dir().join(format!("{name}-host-marker"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("marker"), "host").unwrap();
        Marker { dir }
    }

    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    /// Nothing created, written or mounted in the marker directory.
    fn assert_untouched(&self) {
        assert_eq!(self.listing(), ["marker", "sub"], "new entries on the host");
        assert_eq!(
            std::fs::read_to_string(self.dir.join("marker")).unwrap(),
            "host"
        );
        assert_eq!(std::fs::read_dir(self.dir.join("sub")).unwrap().count(), 0);
        assert_eq!(
            mounts_under(&self.dir),
            0,
            "something was mounted on the host"
        );
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-R", "-l"])
            .arg(&self.dir)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How many mounts of the host's namespace sit at or below `dir`.
fn mounts_under(dir: &Path) -> usize {
    let dir = dir.canonicalize().unwrap_or(dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| Path::new(m).starts_with(&dir))
        })
        .count()
}

fn drop_mount_ns(c: &mut serde_json::Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
}

fn add_mount(c: &mut serde_json::Value, m: serde_json::Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

/// Mounts through `link` (a symlink in the rootfs pointing at the marker): a tmpfs on it, a directory bind below
/// it and a file bind onto the marker file. They must all land inside the rootfs.
fn mounts_through_symlink(name: &str, target: impl Fn(&Marker) -> PathBuf, mount_ns: bool) {
    let id = unique(name);
    let marker = Marker::new(&id);
    let mut b = Bundle::new(&id);
    std::fs::write(b.dir.join("payload"), "container").unwrap();
    let payload = b.dir.join("payload");
    let bundle_dir = b.dir.clone();
    std::os::unix::fs::symlink(target(&marker), b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink(target(&marker), b.rootfs().join("evil2")).unwrap();
    b.sh("cat /evil2/marker; echo; ls /evil").edit(|c| {
        if !mount_ns {
            drop_mount_ns(c);
        }
        add_mount(c, json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
        add_mount(c, json!({"destination": "/evil/sub/deeper", "type": "bind", "source": bundle_dir, "options": ["rbind"]}));
        add_mount(c, json!({"destination": "/evil2/marker", "type": "bind", "source": payload, "options": ["bind", "ro"]}));
    });
    let berth = Berth::new();
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "container\nmarker\nsub\n",
        "the mounts happened inside the container"
    );
    marker.assert_untouched();
    // They were resolved in the rootfs: the link's target was created there.
    let inside = b.rootfs().join(marker.dir.strip_prefix("/").unwrap());
    assert!(inside.is_dir(), "{}", inside.display());
    assert_eq!(mounts_under(&b.dir), 0, "mounts left under the bundle");
}

#[test]
fn absolute_symlink_destination_stays_in_the_rootfs() {
    mounts_through_symlink("abslink", |m| m.dir.clone(), true);
}

#[test]
fn dotdot_symlink_destination_stays_in_the_rootfs() {
    mounts_through_symlink(
        "dotdot",
        |m| Path::new("../../../../../../../../../..").join(m.dir.strip_prefix("/").unwrap()),
        true,
    );
}

#[test]
fn symlink_destinations_without_a_mount_namespace_stay_in_the_rootfs() {
    mounts_through_symlink("nsless-link", |m| m.dir.clone(), false);
}

#[test]
fn a_symlinked_proc_is_refused() {
    for mount_ns in [true, false] {
        let id = unique("procl");
        let marker = Marker::new(&id);
        let mut b = Bundle::new(&id);
        std::os::unix::fs::symlink(&marker.dir, b.rootfs().join("proc")).unwrap();
        b.sh("true").edit(|c| {
            if !mount_ns {
                drop_mount_ns(c);
            }
        });
        let berth = Berth::new();
        let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        // runc's words, which its suite greps.
        assert!(
            err.contains("/proc") && err.contains("must be mounted on ordinary directory"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!berth.root.join(&id).exists());
        marker.assert_untouched();
        assert_eq!(mounts_under(&b.dir), 0);
    }
}

#[test]
fn masked_and_readonly_paths_swapped_for_host_links_touch_nothing() {
    for mount_ns in [true, false] {
        let id = unique("masklink");
        let marker = Marker::new(&id);
        let mut b = Bundle::new(&id);
        std::os::unix::fs::symlink(marker.dir.join("marker"), b.rootfs().join("etc/secret"))
            .unwrap();
        std::os::unix::fs::symlink(&marker.dir, b.rootfs().join("etc/rodir")).unwrap();
        b.sh("cat /etc/secret 2>/dev/null; echo done").edit(|c| {
            if !mount_ns {
                drop_mount_ns(c);
            }
            c["linux"]["maskedPaths"] = json!(["/etc/secret", "/proc/kcore"]);
            c["linux"]["readonlyPaths"] = json!(["/etc/rodir/sub"]);
        });
        let berth = Berth::new();
        let (code, out, err) = berth.run_bundle(&b, &id);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "done\n");
        marker.assert_untouched();
        // The host file is still writable: no read-only or /dev/null bind went over it.
        std::fs::write(marker.dir.join("marker"), "host").unwrap();
        assert_eq!(mounts_under(&b.dir), 0);
    }
}

#[test]
fn a_missing_bind_source_fails_cleanly() {
    for mount_ns in [true, false] {
        let id = unique("nosrc");
        let marker = Marker::new(&id);
        let mut b = Bundle::new(&id);
        let missing = marker.dir.join("does-not-exist");
        b.sh("true").edit(|c| {
            if !mount_ns {
                drop_mount_ns(c);
            }
            add_mount(c, json!({"destination": "/m", "type": "bind", "source": missing, "options": ["rbind"]}));
        });
        let berth = Berth::new();
        let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(
            err.contains("bind source") && err.contains("does-not-exist"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!berth.root.join(&id).exists(), "state dir left behind");
        marker.assert_untouched();
        // Without a mount namespace /proc, /dev, ... were already mounted in the host's: all taken down.
        assert_eq!(
            mounts_under(&b.dir),
            0,
            "mounts left behind (mount ns: {mount_ns})"
        );
    }
}

#[test]
fn bad_propagation_and_devices_are_refused_before_anything_exists() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "linux.rootfsPropagation \"sideways\": unknown propagation",
            Box::new(|c| c["linux"]["rootfsPropagation"] = json!("sideways")),
        ),
        (
            "linux.devices[1].major -1: not a device number",
            Box::new(|c| {
                c["linux"]["devices"] = json!([
                    {"path": "/dev/ok", "type": "c", "major": 1, "minor": 3},
                    {"path": "/dev/x", "type": "c", "major": -1, "minor": 3}
                ])
            }),
        ),
        (
            // In the host's uts namespace setdomainname would rename the host.
            "domainname: needs a new uts namespace",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("hostname");
                c["domainname"] = json!("pwned.example");
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "uts");
            }),
        ),
        (
            "unknown variant",
            Box::new(|c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/x", "type": "z", "major": 1, "minor": 3}])
            }),
        ),
        (
            "linux.devices[0].type \"a\": only valid in cgroup device rules",
            Box::new(|c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/x", "type": "a", "major": 1, "minor": 3}])
            }),
        ),
        (
            "linux.devices[0].path \"/dev/../etc/passwd\": device paths must be under /dev",
            Box::new(|c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/../etc/passwd", "type": "c", "major": 1, "minor": 3}])
            }),
        ),
        (
            "need a bind mount",
            Box::new(|c| {
                add_mount(
                    c,
                    json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
                )
            }),
        ),
    ];
    for (want, edit) in cases {
        let id = unique("badcfg");
        let mut b = Bundle::new(&id);
        b.sh("true").edit(|c| edit(c));
        let berth = Berth::new();
        let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(err.contains(want), "want {want:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!berth.root.join(&id).exists());
        assert!(
            std::fs::symlink_metadata(b.rootfs().join("etc/passwd"))
                .unwrap()
                .is_file(),
            "{want}: a node was made"
        );
        assert_eq!(mounts_under(&b.dir), 0);
    }
}
