//! Idmapped mounts (`idmap`/`ridmap`) in containers with their own user namespace: `create` makes the mount on the
//! host side and the init attaches it. Owners seen from inside and written back to the host, recursive idmaps of
//! submounts, locks kept on a read-only source, a joined user namespace, and failures that leave nothing behind.
//! (Idmapped mounts without a user namespace: tests/rootfs.rs.)

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// A bundle whose container has a user namespace (container ids 0..65536 are host ids 100000..) and whose image
/// belongs to the mapped root.
fn userns_bundle(id: &str) -> Bundle {
    let mut b = Bundle::new(id);
    chown_rootfs(&b, MAPPED_ROOT);
    b.edit(with_user_ns);
    b
}

fn add_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

fn add_cap(c: &mut Value, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

/// A host directory of the bundle with a file `f` owned by `uid:gid`.
fn host_dir(b: &Bundle, name: &str, uid: u32, gid: u32) -> PathBuf {
    let dir = b.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "x").unwrap();
    std::os::unix::fs::chown(dir.join("f"), Some(uid), Some(gid)).unwrap();
    // The container's root must be able to create files in it through the idmapped mount (0777: whatever id).
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    dir
}

fn owner(path: &Path) -> String {
    let m = std::fs::symlink_metadata(path).unwrap();
    format!("{}:{}", m.uid(), m.gid())
}

/// Runs the bundle in the foreground, asserting exit 0; returns stdout.
fn run_ok(b: &Bundle, id: &str) -> String {
    let berth = Berth::new();
    let (code, out, err) = berth.run_bundle(b, id);
    assert_eq!(code, 0, "{id}: stdout {out}\nstderr {err}");
    out
}

/// Host mounts (mount points) at or below `dir`.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.canonicalize().unwrap_or(dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Mounts on the host for a test, taken down (lazily, recursively) on drop.
struct HostMounts(Vec<PathBuf>);

impl HostMounts {
    fn run(&mut self, args: &[&str], at: &Path) {
        let st = Command::new("mount").args(args).arg(at).status().unwrap();
        assert!(st.success(), "mount {args:?} {}", at.display());
        if !self.0.iter().any(|p| p == at) {
            self.0.push(at.to_path_buf());
        }
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = Command::new("umount").args(["-R", "-l"]).arg(p).status();
        }
    }
}

#[test]
fn container_mappings_translate_owners_both_ways() {
    let id = unique("idmap-userns");
    let mut b = userns_bundle(&id);
    let src = host_dir(&b, "data", 1000, 1000);
    // Without mappings of its own the mount takes the container's: host id N is container id N through it. A plain
    // bind shows the same file as unmapped (the overflow id 65534).
    b.sh(
        "stat -c '%u:%g' /id/f /plain/f; echo y > /id/by-root; touch /id/by-user; chown 1000:1001 /id/by-user; \
         stat -c '%u:%g' /idro/f; touch /idro/x 2>/dev/null || echo READ-ONLY",
    )
    .edit(|c| {
        add_cap(c, "CAP_CHOWN");
        add_mount(
            c,
            json!({"destination": "/id", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
        );
        add_mount(
            c,
            json!({"destination": "/plain", "type": "bind", "source": src, "options": ["bind"]}),
        );
        // Options apply to the attached idmapped mount as to any bind (the read-only remount).
        add_mount(
            c,
            json!({"destination": "/idro", "type": "bind", "source": src,
            "options": ["bind", "idmap", "ro", "nosuid"]}),
        );
    });
    assert_eq!(
        run_ok(&b, &id),
        "1000:1000\n65534:65534\n1000:1000\nREAD-ONLY\n"
    );
    assert!(!src.join("x").exists());
    // Written back through the mapping: the container's root is the host's root on this mount, not 100000.
    assert_eq!(owner(&src.join("by-root")), "0:0");
    assert_eq!(owner(&src.join("by-user")), "1000:1001");
}

#[test]
fn mount_mappings_of_its_own_translate_owners_both_ways() {
    let id = unique("idmap-own");
    let mut b = userns_bundle(&id);
    let src = host_dir(&b, "data", 1000, 1000);
    // The mount's mappings: on-disk 0 is host 100000 (the container's root), on-disk 1000 is host 100007 / 100009
    // (container 7 / 9).
    b.sh("stat -c '%u:%g' /own/f; echo y > /own/by-root; touch /own/by-7; chown 7:9 /own/by-7")
        .edit(|c| {
            add_cap(c, "CAP_CHOWN");
            add_mount(
                c,
                json!({"destination": "/own", "type": "bind", "source": src,
                "options": ["bind", "idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1},
                                {"containerID": 1000, "hostID": 100007, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1},
                                {"containerID": 1000, "hostID": 100009, "size": 1}]}),
            );
        });
    assert_eq!(run_ok(&b, &id), "7:9\n");
    assert_eq!(owner(&src.join("by-root")), "0:0");
    assert_eq!(owner(&src.join("by-7")), "1000:1000");
}

#[test]
fn ridmap_maps_submounts_and_idmap_only_the_top() {
    let id = unique("idmap-rec");
    let mut b = userns_bundle(&id);
    let src = host_dir(&b, "data", 1000, 1000);
    let sub = src.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let mut host = HostMounts(Vec::new());
    host.run(&["-t", "tmpfs", "berth-idmap-sub"], &sub);
    std::fs::write(sub.join("g"), "x").unwrap();
    std::os::unix::fs::chown(sub.join("g"), Some(1000), Some(1000)).unwrap();
    b.sh("stat -c '%u:%g' /r/f /r/sub/g /n/f /n/sub/g").edit(|c| {
        add_mount(
            c,
            json!({"destination": "/r", "type": "bind", "source": src, "options": ["rbind", "ridmap"]}),
        );
        // As runc: rbind + idmap copies the whole tree but maps only its top mount.
        add_mount(
            c,
            json!({"destination": "/n", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
        );
    });
    assert_eq!(
        run_ok(&b, &id),
        "1000:1000\n1000:1000\n1000:1000\n65534:65534\n"
    );
    drop(host);
}

#[test]
fn a_read_only_source_stays_locked_read_only() {
    let id = unique("idmap-ro");
    let mut b = userns_bundle(&id);
    let src = host_dir(&b, "data", 1000, 1000);
    let ro = b.dir.join("data-ro");
    std::fs::create_dir_all(&ro).unwrap();
    let mut host = HostMounts(Vec::new());
    host.run(&["--bind", src.to_str().unwrap()], &ro);
    host.run(&["-o", "remount,bind,ro"], &ro);
    // The copy is taken in the container's mount namespace, where the read-only flag of a host mount is locked:
    // even with CAP_SYS_ADMIN the container cannot make its idmapped mount writable.
    b.sh(
        "stat -c '%u:%g' /ro/f; mount -o remount,bind,rw /ro 2>/dev/null && echo REMOUNTED; \
          touch /ro/new 2>/dev/null && echo WROTE; echo done",
    )
    .edit(|c| {
        add_cap(c, "CAP_SYS_ADMIN");
        add_mount(
            c,
            json!({"destination": "/ro", "type": "bind", "source": ro, "options": ["bind", "idmap"]}),
        );
    });
    assert_eq!(run_ok(&b, &id), "1000:1000\ndone\n");
    assert!(!src.join("new").exists());
    drop(host);
}

#[test]
fn a_joined_user_namespace_lends_its_mappings() {
    let berth = Berth::new();
    // A first container owns the user namespace; the second joins it (berth's staged setup, with its own mount
    // and pid namespaces) and idmaps a host directory with its mappings.
    let holder_id = unique("idmap-holder");
    let mut holder = userns_bundle(&holder_id);
    holder.sh("sleep 60");
    assert!(berth.create(&holder, &holder_id, &[]).status.success());
    let holder_pid = berth.state(&holder_id)["pid"].as_i64().unwrap();

    let id = unique("idmap-joined");
    let mut b = Bundle::new(&id);
    chown_rootfs(&b, MAPPED_ROOT);
    let src = host_dir(&b, "data", 1000, 1000);
    b.sh("stat -c '%u:%g' /id/f; echo y > /id/by-root").edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": format!("/proc/{holder_pid}/ns/user")}));
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup");
        add_mount(
            c,
            json!({"destination": "/id", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
        );
    });
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, "1000:1000\n");
    assert_eq!(owner(&src.join("by-root")), "0:0");
    berth.ok(&["delete", "--force", &holder_id]);
}

/// `create` must fail with one line naming the container and `want`, leaving no state dir, cgroup or host mount.
fn create_fails_cleanly(b: &Bundle, id: &str, want: &[&str]) {
    let berth = Berth::new();
    let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), id]);
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(id), "the error names the container: {err}");
    for w in want {
        assert!(err.contains(w), "the error should mention {w:?}: {err}");
    }
    let cgroups: Vec<_> = own_cgroup_dirs()
        .into_iter()
        .map(|d| d.join(&b.cgroup))
        .collect();
    assert_gone(&berth, id, &cgroups, None);
    assert_eq!(
        host_mounts_under(&b.dir),
        Vec::<String>::new(),
        "mounts left on the host"
    );
}

#[test]
fn overlapping_mount_mappings_are_refused_before_anything_exists() {
    let id = unique("idmap-bad");
    let mut b = userns_bundle(&id);
    let src = host_dir(&b, "data", 1000, 1000);
    b.sh("true").edit(|c| {
        add_mount(
            c,
            json!({"destination": "/bad", "type": "bind", "source": src,
            "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 10},
                            {"containerID": 5, "hostID": 200000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}]}),
        );
    });
    create_fails_cleanly(&b, &id, &["/bad", "uidMappings", "overlap"]);
    // Only one of the two maps: refused as well.
    b.edit(|c| {
        let last = c["mounts"].as_array_mut().unwrap().last_mut().unwrap();
        last["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
        last.as_object_mut().unwrap().remove("gidMappings");
    });
    create_fails_cleanly(&b, &id, &["/bad", "together"]);
}

#[test]
fn a_filesystem_without_idmap_support_fails_cleanly_mid_create() {
    let id = unique("idmap-nofs");
    let mut b = userns_bundle(&id);
    let src = host_dir(&b, "data", 1000, 1000);
    // The first mounts are made (and must be gone afterwards); sysfs then refuses MOUNT_ATTR_IDMAP, which only
    // shows when `create` asks the kernel, with the init alive in its namespaces and cgroup.
    b.sh("true").edit(|c| {
        add_mount(
            c,
            json!({"destination": "/ok", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
        );
        add_mount(
            c,
            json!({"destination": "/m", "type": "bind", "source": "/sys/kernel/mm",
            "options": ["bind", "idmap"]}),
        );
    });
    create_fails_cleanly(
        &b,
        &id,
        &[
            "idmapped mount /sys/kernel/mm on /m",
            "mount_setattr(MOUNT_ATTR_IDMAP)",
            "Invalid argument",
        ],
    );
}
