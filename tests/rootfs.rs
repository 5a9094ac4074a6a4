//! The root filesystem with real containers: mount types and options (checked in the container's own
//! /proc/self/mountinfo), recursive attributes, idmapped mounts, tmpcopyup, propagation to and from the host, /dev,
//! masked and read-only paths, sysctls, and containers without a mount namespace.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Runs the bundle in the foreground and returns its stdout, asserting exit 0.
fn run_ok(b: &Bundle, id: &str) -> String {
    let berth = Berth::new();
    let (code, out, err) = berth.run_bundle(b, id);
    assert_eq!(code, 0, "{id}: stdout {out}\nstderr {err}");
    out
}

/// The options columns of the mountinfo line for `mount_point` in `text` (per-mount options, optional fields,
/// fs type, super options), e.g. "ro,nosuid,relatime shared:5 - tmpfs tmpfs rw".
fn mount_line<'a>(text: &'a str, mount_point: &str) -> Option<&'a str> {
    text.lines()
        .rfind(|l| l.split(' ').nth(4) == Some(mount_point))
        .map(|l| l.splitn(6, ' ').nth(5).unwrap_or(""))
}

fn per_mount_opts(line: &str) -> Vec<&str> {
    line.split(' ').next().unwrap_or("").split(',').collect()
}

fn add_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

fn all_caps(c: &mut Value) {
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
}

/// A tmpfs mounted on the host for the duration of a test, unmounted (lazily, with everything below) on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(path: &Path, shared: bool) -> HostMount {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "berth-test"])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success());
        if shared {
            assert!(Command::new("mount")
                .arg("--make-shared")
                .arg(path)
                .status()
                .unwrap()
                .success());
        }
        HostMount(path.to_path_buf())
    }
}

impl HostMount {
    /// Binds `dir` onto itself and makes it shared: then anything mounted below it in a container that kept the
    /// sharing would show on the host.
    fn shared_self_bind(dir: &Path) -> HostMount {
        for args in [&["--bind"][..], &["--make-shared"][..]] {
            let mut c = Command::new("mount");
            c.args(args).arg(dir);
            if args[0] == "--bind" {
                c.arg(dir);
            }
            assert!(c.status().unwrap().success());
        }
        HostMount(dir.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-R")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn mount_options_reach_the_kernel() {
    let id = unique("mntopts");
    let mut b = Bundle::new(&id);
    let src = b.dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    b.sh("cat /proc/self/mountinfo; touch /robind/new 2>/dev/null && echo WROTE-RO; \
          touch /rwbind/new && echo WROTE-RW; ln -s /robind/f /nsf/l && cat /nsf/l 2>/dev/null || echo NOFOLLOW")
        .edit(|c| {
            add_mount(c, json!({"destination": "/t1", "type": "tmpfs", "source": "tmpfs",
                "options": ["ro", "nosuid", "nodev", "noexec", "noatime", "size=1m", "mode=700"]}));
            add_mount(c, json!({"destination": "/t2", "type": "tmpfs", "source": "tmpfs",
                "options": ["strictatime", "nodiratime", "sync", "dirsync", "ro", "rw", "exec", "suid"]}));
            add_mount(c, json!({"destination": "/nsf", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosymfollow"]}));
            add_mount(c, json!({"destination": "/robind", "type": "bind", "source": src,
                "options": ["bind", "ro", "nosuid"]}));
            add_mount(c, json!({"destination": "/rwbind", "type": "bind", "source": src,
                "options": ["rbind", "rw"]}));
            add_mount(c, json!({"destination": "/robind/f", "type": "bind",
                "source": src.join("f"), "options": ["bind", "ro"]}));
            add_mount(c, json!({"destination": "/mq", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "nodev", "noexec"]}));
        });
    let out = run_ok(&b, &id);
    let t1 = mount_line(&out, "/t1").expect("/t1 mounted");
    let o = per_mount_opts(t1);
    for want in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        assert!(o.contains(&want), "/t1 lacks {want}: {t1}");
    }
    assert!(
        t1.contains("tmpfs") && t1.contains("size=1024k") && t1.contains("mode=700"),
        "{t1}"
    );
    let t2 = mount_line(&out, "/t2").unwrap();
    let o = per_mount_opts(t2);
    assert!(
        o.contains(&"rw") && o.contains(&"nodiratime") && !o.contains(&"noexec"),
        "{t2}"
    );
    assert!(t2.contains("sync") && t2.contains("dirsync"), "{t2}");
    assert!(per_mount_opts(mount_line(&out, "/nsf").unwrap()).contains(&"nosymfollow"));
    let ro = mount_line(&out, "/robind").unwrap();
    assert!(per_mount_opts(ro).starts_with(&["ro", "nosuid"]), "{ro}");
    assert!(per_mount_opts(mount_line(&out, "/rwbind").unwrap()).contains(&"rw"));
    assert!(per_mount_opts(mount_line(&out, "/robind/f").unwrap()).contains(&"ro"));
    assert!(mount_line(&out, "/mq").unwrap().contains(" - mqueue "));
    assert!(!out.contains("WROTE-RO"), "an ro bind must be read-only");
    assert!(out.contains("WROTE-RW") && src.join("new").exists());
    assert!(
        out.contains("NOFOLLOW"),
        "nosymfollow must refuse to follow links"
    );
}

#[test]
fn recursive_attributes_reach_submounts() {
    let id = unique("rattr");
    let mut b = Bundle::new(&id);
    // The source has a submount (made by the config itself, inside the container's namespace).
    let src = b.rootfs().join("a");
    b.sh("cat /proc/self/mountinfo; touch /b/sub/x 2>/dev/null && echo WROTE; true")
        .edit(|c| {
            add_mount(
                c,
                json!({"destination": "/a", "type": "tmpfs", "source": "tmpfs"}),
            );
            add_mount(
                c,
                json!({"destination": "/a/sub", "type": "tmpfs", "source": "tmpfs"}),
            );
            add_mount(
                c,
                json!({"destination": "/b", "type": "bind", "source": src,
                "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"]}),
            );
            add_mount(
                c,
                json!({"destination": "/c", "type": "bind", "source": src,
                "options": ["rbind", "ro"]}),
            );
        });
    let out = run_ok(&b, &id);
    for mp in ["/b", "/b/sub"] {
        let o = per_mount_opts(mount_line(&out, mp).unwrap_or_else(|| panic!("{mp}: {out}")));
        for want in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
            assert!(o.contains(&want), "{mp} lacks {want}: {o:?}");
        }
    }
    assert!(!out.contains("WROTE"));
    // Plain `ro` only reaches the top of an rbind (that is what the r* words are for).
    assert!(per_mount_opts(mount_line(&out, "/c").unwrap()).contains(&"ro"));
    assert!(per_mount_opts(mount_line(&out, "/c/sub").unwrap()).contains(&"rw"));
}

#[test]
fn per_mount_propagation_and_tmpcopyup() {
    let id = unique("prop");
    let mut b = Bundle::new(&id);
    std::fs::create_dir_all(b.rootfs().join("data/sub")).unwrap();
    std::fs::write(b.rootfs().join("data/sub/file"), "from-image").unwrap();
    std::os::unix::fs::symlink("sub/file", b.rootfs().join("data/link")).unwrap();
    b.sh("cat /proc/self/mountinfo; echo; cat /data/link; echo; stat -c '%a' /data/sub")
        .edit(|c| {
            add_mount(c, json!({"destination": "/s", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]}));
            add_mount(c, json!({"destination": "/u", "type": "tmpfs", "source": "tmpfs", "options": ["unbindable"]}));
            add_mount(c, json!({"destination": "/p", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]}));
            add_mount(c, json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
        });
    std::fs::set_permissions(
        b.rootfs().join("data/sub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o710),
    )
    .unwrap();
    let out = run_ok(&b, &id);
    assert!(mount_line(&out, "/s").unwrap().contains("shared:"), "{out}");
    assert!(mount_line(&out, "/u").unwrap().contains("unbindable"));
    let p = mount_line(&out, "/p").unwrap();
    assert!(!p.contains("shared:") && !p.contains("master:"), "{p}");
    assert!(mount_line(&out, "/data").unwrap().contains(" - tmpfs "));
    assert!(
        out.contains("from-image"),
        "tmpcopyup must copy the image's files: {out}"
    );
    assert!(
        out.trim_end().ends_with("710"),
        "tmpcopyup keeps modes: {out}"
    );
}

#[test]
fn idmapped_mounts_show_mapped_owners() {
    let id = unique("idmap");
    let mut b = Bundle::new(&id);
    let src = b.dir.join("idsrc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(0), Some(0)).unwrap();
    b.sh("stat -c '%u:%g' /id/f /rid/f /plain/f").edit(|c| {
        add_mount(
            c,
            json!({"destination": "/id", "type": "bind", "source": src,
            "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}]}),
        );
        add_mount(
            c,
            json!({"destination": "/rid", "type": "bind", "source": src,
            "options": ["rbind", "ridmap"],
            "uidMappings": [{"containerID": 0, "hostID": 3000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 3000, "size": 1}]}),
        );
        add_mount(
            c,
            json!({"destination": "/plain", "type": "bind", "source": src, "options": ["bind"]}),
        );
    });
    let out = run_ok(&b, &id);
    assert_eq!(out, "1000:2000\n3000:3000\n0:0\n");
}

#[test]
fn proc_and_sys_take_only_their_filesystems() {
    for (dest, typ, want) in [
        ("/proc", "tmpfs", "only procfs"),
        ("/sys", "tmpfs", "only sysfs"),
    ] {
        let id = unique("procsys");
        let mut b = Bundle::new(&id);
        b.sh("true").edit(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != dest && m["destination"] != "/sys/fs/cgroup");
            add_mount(c, json!({"destination": dest, "type": typ, "source": "x"}));
        });
        let berth = Berth::new();
        let (code, _, err) = berth.run_bundle(&b, &id);
        assert_eq!(code, 1, "{dest}: {err}");
        assert!(err.contains(want) && err.contains(dest), "{err}");
        assert!(!berth.root.join(&id).exists());
    }
}

/// Waits until `f` is true (bounded).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("timed out waiting for {what}");
    false
}

/// One run of the host/container propagation experiment: a host tmpfs (shared) is bound into the container at
/// /h; the host mounts below it, the container mounts below it; returns (host→container, container→host).
fn propagation(root_prop: Option<&str>, bind_opts: &[&str]) -> (bool, bool) {
    let id = unique("hostprop");
    let mut b = Bundle::new(&id);
    let h = std::env::temp_dir().join(format!("{id}-host"));
    let _host = HostMount::tmpfs(&h, true);
    std::fs::create_dir_all(h.join("fromhost")).unwrap();
    std::fs::create_dir_all(h.join("fromcont")).unwrap();
    b.sh("i=0; while [ ! -e /h/fromhost/marker ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
          [ -e /h/fromhost/marker ] && echo SEEN; mount -t tmpfs inner /h/fromcont && echo MOUNTED; exec sleep 100")
        .edit(|c| {
            all_caps(c);
            if let Some(p) = root_prop {
                c["linux"]["rootfsPropagation"] = json!(p);
            }
            add_mount(c, json!({"destination": "/h", "type": "bind", "source": h, "options": bind_opts}));
        });
    let bundle_mount = HostMount::shared_self_bind(&b.dir);
    let berth = Berth::new();
    let created = berth.create(&b, &id, &[]);
    assert!(created.status.success(), "{created:?}");
    berth.ok(&["start", &id]);
    let _m = HostMount::tmpfs(&h.join("fromhost"), false);
    std::fs::write(h.join("fromhost/marker"), "").unwrap();
    assert!(wait_for("the container's report", || berth
        .stdout_of(&b, &id)
        .contains("MOUNTED")));
    let out = berth.stdout_of(&b, &id);
    let fromcont = h.join("fromcont").display().to_string();
    let to_host = mount_line(&host_mountinfo(), &fromcont).is_some();
    // Whatever the propagation, the container's own mounts (its rootfs bind, /proc, ...) never reach the host.
    let below_bundle = format!("{}/", b.dir.display());
    assert!(
        !host_mountinfo().lines().any(|l| l
            .split(' ')
            .nth(4)
            .is_some_and(|m| m.starts_with(&below_bundle))),
        "{root_prop:?}: a container mount reached the host"
    );
    berth.ok(&["delete", "--force", &id]);
    drop(bundle_mount);
    (out.contains("SEEN"), to_host)
}

#[test]
fn propagation_between_host_and_container() {
    assert_eq!(
        propagation(Some("rshared"), &["rbind", "rshared"]),
        (true, true),
        "rshared: both ways"
    );
    assert_eq!(
        propagation(None, &["rbind"]),
        (true, false),
        "default rslave: host to container only"
    );
    assert_eq!(
        propagation(Some("rprivate"), &["rbind"]),
        (false, false),
        "rprivate: neither way"
    );
}

#[test]
fn rootfs_propagation_applies_to_the_containers_root() {
    for (prop, want) in [
        ("shared", "shared:"),
        ("unbindable", "unbindable"),
        ("private", ""),
    ] {
        let id = unique("rootprop");
        let mut b = Bundle::new(&id);
        b.sh("cat /proc/self/mountinfo").edit(|c| {
            c["linux"]["rootfsPropagation"] = json!(prop);
        });
        let out = run_ok(&b, &id);
        let root = mount_line(&out, "/").unwrap();
        if want.is_empty() {
            assert!(
                !root.contains("shared:") && !root.contains("master:"),
                "{prop}: {root}"
            );
        } else {
            assert!(root.contains(want), "{prop}: {root}");
        }
    }
}

#[test]
fn devices_have_exact_numbers_modes_and_owners() {
    let id = unique("dev");
    let mut b = Bundle::new(&id);
    b.sh("umask 077; stat -c '%n %F %t:%T %a %u:%g' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty \
          /dev/fuse /dev/blk /dev/fifo; \
          for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done; \
          grep ' /dev/pts ' /proc/self/mountinfo; ls /dev/shm >/dev/null && echo SHM")
        .edit(|c| {
            // No devpts in the config: berth mounts a new instance itself.
            c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev/pts");
            c["linux"]["devices"] = json!([
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1, "gid": 2},
                {"path": "/dev/blk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
                {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0, "fileMode": 0o620}
            ]);
        });
    let out = run_ok(&b, &id);
    for line in [
        "/dev/null character special file 1:3 666 0:0",
        "/dev/zero character special file 1:5 666 0:0",
        "/dev/full character special file 1:7 666 0:0",
        "/dev/random character special file 1:8 666 0:0",
        "/dev/urandom character special file 1:9 666 0:0",
        "/dev/tty character special file 5:0 666 0:0",
        "/dev/fuse character special file a:e5 640 1:2",
        "/dev/blk block special file 7:c8 600 0:0",
        "/dev/fifo fifo 0:0 620 0:0",
        "fd=/proc/self/fd",
        "stdin=/proc/self/fd/0",
        "stdout=/proc/self/fd/1",
        "stderr=/proc/self/fd/2",
        "ptmx=pts/ptmx",
        "SHM",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
    let pts = out.lines().find(|l| l.contains(" /dev/pts ")).unwrap();
    assert!(
        pts.contains(" - devpts ") && pts.contains("ptmxmode=666"),
        "{pts}"
    );
}

#[test]
fn masked_readonly_paths_and_readonly_root() {
    let id = unique("mask");
    let mut b = Bundle::new(&id);
    std::fs::create_dir_all(b.rootfs().join("secret/dir")).unwrap();
    std::fs::write(b.rootfs().join("secret/dir/key"), "k").unwrap();
    std::fs::write(b.rootfs().join("secret/file"), "s").unwrap();
    std::fs::create_dir_all(b.rootfs().join("ro")).unwrap();
    b.sh("echo file=$(cat /secret/file) dir=$(ls /secret/dir); stat -c '%t:%T' /secret/file; \
          touch /secret/dir/x 2>/dev/null && echo WROTE-MASK; touch /ro/x 2>/dev/null && echo WROTE-RO; \
          touch /newfile 2>/dev/null && echo WROTE-ROOT; touch /tmp/x 2>/dev/null && echo WROTE-TMP; \
          grep ' / ' /proc/self/mountinfo")
        .edit(|c| {
            c["linux"]["maskedPaths"] = json!(["/secret/file", "/secret/dir", "/does/not/exist"]);
            c["linux"]["readonlyPaths"] = json!(["/ro", "/also/missing"]);
            c["root"]["readonly"] = json!(true);
        });
    let out = run_ok(&b, &id);
    assert!(out.contains("file= dir=\n"), "{out}");
    assert!(out.contains("1:3\n"));
    for bad in ["WROTE-MASK", "WROTE-RO", "WROTE-ROOT", "WROTE-TMP"] {
        assert!(!out.contains(bad), "{bad}: {out}");
    }
    let root = out.lines().last().unwrap();
    assert!(root.split(' ').nth(5).unwrap().starts_with("ro"), "{root}");
    assert!(b.rootfs().join("secret/dir/key").exists());
}

/// As runc: a masked path listed twice is masked once, and masked directories share one empty read-only tmpfs
/// (copies of one mount: one device number), which stays unwritable.
#[test]
fn masked_duplicates_mount_once_and_directories_share_one_tmpfs() {
    let id = unique("maskdup");
    let mut b = Bundle::new(&id);
    for d in ["m1", "m2", "m3"] {
        std::fs::create_dir_all(b.rootfs().join(d)).unwrap();
    }
    std::fs::write(b.rootfs().join("mfile"), "s").unwrap();
    b.sh(
        "grep -c ' /m1 ' /proc/self/mounts; grep -c ' /mfile ' /proc/self/mounts; \
          stat -c %d /m1 /m2 /m3 | sort -u | wc -l; touch /m2/x 2>/dev/null && echo WROTE; true",
    )
    .edit(|c| {
        c["linux"]["maskedPaths"] = json!(["/m1", "/mfile", "/m2", "/m1", "/mfile", "/m3"]);
    });
    assert_eq!(run_ok(&b, &id), "1\n1\n1\n");
}

#[test]
fn sysctls_are_written_when_owned_and_refused_otherwise() {
    let id = unique("sysctl");
    let mut b = Bundle::new(&id);
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/kernel/domainname")
        .edit(|c| {
            c["linux"]["sysctl"] = json!({
                "net.ipv4.ip_forward": "1",
                "kernel.shmmni": "1234",
                "kernel.domainname": "berth.example"
            });
        });
    assert_eq!(run_ok(&b, &id), "1\n1234\nberth.example\n");

    for (key, drop_ns, want) in [
        ("net.ipv4.ip_forward", "network", "network namespace"),
        ("kernel.shmmax", "ipc", "ipc namespace"),
        ("kernel.pid_max", "", "not in a separate kernel namespace"),
        ("kernel.hostname", "", "hostname"),
        ("net/../../../etc/passwd", "", "invalid name"),
    ] {
        let id = unique("sysctl-bad");
        let mut b = Bundle::new(&id);
        b.sh("true").edit(|c| {
            c["linux"]["sysctl"] = json!({ key: "1" });
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != drop_ns);
        });
        let berth = Berth::new();
        let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(err.contains(key) && err.contains(want), "{key}: {err}");
        assert!(!berth.root.join(&id).exists(), "{key}: state left behind");
    }
}

#[test]
fn no_mount_namespace_mounts_under_the_rootfs_and_delete_cleans_up() {
    let id = unique("nomntns");
    let mut b = Bundle::new(&id);
    b.sh("ls /proc/1/ >/dev/null && echo PROC; stat -c '%t:%T' /dev/null; touch /x 2>/dev/null || echo RO; exec sleep 100")
        .edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "mount");
            c["root"]["readonly"] = json!(true);
            c["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/keys"]);
        });
    let rootfs = b.rootfs().canonicalize().unwrap();
    let under = |info: &str| {
        info.lines()
            .filter(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|m| Path::new(m).starts_with(&rootfs))
            })
            .count()
    };
    let berth = Berth::new();
    assert!(berth.create(&b, &id, &[]).status.success());
    assert!(
        under(&host_mountinfo()) >= 4,
        "the mounts are made in the host's namespace"
    );
    berth.ok(&["start", &id]);
    assert!(wait_for("output", || berth
        .stdout_of(&b, &id)
        .lines()
        .count()
        == 3));
    assert_eq!(berth.stdout_of(&b, &id), "PROC\n1:3\nRO\n");
    berth.ok(&["delete", "--force", &id]);
    assert_eq!(
        under(&host_mountinfo()),
        0,
        "delete must unmount everything under the rootfs"
    );

    // `run` (create + start + delete) also leaves nothing.
    b.sh("grep -c . /proc/self/mountinfo >/dev/null && echo OK");
    assert_eq!(run_ok(&b, &unique("nomntns-run")), "OK\n");
    assert_eq!(under(&host_mountinfo()), 0);
}

#[test]
fn no_pivot_moves_the_root() {
    let id = unique("nopivot");
    let mut b = Bundle::new(&id);
    b.sh("cat /proc/self/mountinfo | grep -c ' / ' >/dev/null && ls / | grep -c bin");
    let berth = Berth::new();
    assert!(berth.create(&b, &id, &["--no-pivot"]).status.success());
    berth.ok(&["start", &id]);
    assert!(wait_for("output", || !berth.stdout_of(&b, &id).is_empty()));
    assert_eq!(berth.stdout_of(&b, &id), "1\n");
}

#[test]
fn user_namespace_binds_devices_from_the_host() {
    let id = unique("userns-dev");
    let mut b = Bundle::new(&id);
    // The image belongs to the container's root, as with any user-namespaced container.
    assert!(Command::new("chown")
        .args(["-R", "-h", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap()
        .success());
    b.sh(
        "stat -c '%n %t:%T' /dev/null /dev/zero /dev/tty; echo x > /dev/null && echo NULL-OK; \
          grep -c ' /dev/null ' /proc/self/mountinfo",
    )
    .edit(|c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // A mount label is ignored where SELinux is off (as runc does).
        c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    });
    let out = run_ok(&b, &id);
    assert_eq!(
        out, "/dev/null 1:3\n/dev/zero 1:5\n/dev/tty 5:0\nNULL-OK\n1\n",
        "devices are binds of the host's nodes"
    );
}

#[test]
fn overlay_mounts_merge_lower_and_upper() {
    let berth = Berth::new();
    let id = unique("overlay");
    let mut b = Bundle::new(&id);
    let (lower, upper, work) = (b.dir.join("lower"), b.dir.join("upper"), b.dir.join("work"));
    for d in [&lower, &upper, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(lower.join("from-lower"), "lower\n").unwrap();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    b.sh("cat /merged/from-lower; echo new > /merged/written; awk '$5==\"/merged\" {print $9}' /proc/self/mountinfo")
        .edit(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/merged", "type": "overlay", "source": "overlay", "options": [data]}));
        });
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["lower", "overlay"],
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("written")).unwrap(),
        "new\n",
        "writes land in upperdir"
    );
    assert!(!lower.join("written").exists(), "lowerdir stays untouched");
}

/// A read-only /dev (runc issue 3248): the tmpfs is populated first (devices, /dev/pts, /dev/shm, ...), then made
/// read-only, before the container runs.
#[test]
fn readonly_dev_is_populated_then_readonly() {
    let id = unique("ro-dev");
    let mut b = Bundle::new(&id);
    b.sh(
        "grep ' /dev ' /proc/self/mountinfo | cut -d' ' -f6; test -c /dev/null && test -d /dev/pts && echo DEVICES; \
         touch /dev/new 2>/dev/null || echo REFUSED",
    )
    .edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    });
    let out = run_ok(&b, &id);
    let lines: Vec<&str> = out.lines().collect();
    assert!(per_mount_opts(lines[0]).contains(&"ro"), "{out}");
    assert_eq!(&lines[1..], ["DEVICES", "REFUSED"], "{out}");
}

/// In a user namespace, bind sources are opened with berth's (the host's) credentials: sources below a directory
/// the container's root (host uid 100000) may not enter still bind, with their options applied.
#[test]
fn user_namespace_binds_sources_the_container_user_cannot_reach() {
    let id = unique("userns-hidden");
    let mut b = Bundle::new(&id);
    let mut mounts = Vec::new();
    for (i, opts) in [(1, json!(["bind"])), (2, json!(["bind", "ro"]))] {
        let hidden = b.dir.join(format!("hidden-{i}"));
        std::fs::create_dir_all(hidden.join("dir")).unwrap();
        std::fs::write(hidden.join("dir/foo.txt"), format!("secret {i}\n")).unwrap();
        std::fs::set_permissions(&hidden, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        mounts.push(
            json!({"destination": format!("/tmp/mount-{i}"), "source": hidden.join("dir"),
                           "options": opts}),
        );
    }
    b.sh("cat /tmp/mount-1/foo.txt /tmp/mount-2/foo.txt; grep ' /tmp/mount-2 ' /proc/self/mountinfo | cut -d' ' -f6")
        .edit(|c| {
            with_user_ns(c);
            for m in mounts {
                add_mount(c, m);
            }
        });
    chown_rootfs(&b, MAPPED_ROOT);
    let out = run_ok(&b, &id);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["secret 1", "secret 2"], "{out}");
    assert!(per_mount_opts(lines[2]).contains(&"ro"), "{out}");
}

/// A bind whose destination goes through dangling symlinks (in a component, or as the last link) lands where they
/// point, inside the rootfs, for a file and for a directory (runc does the same).
#[test]
fn binds_through_dangling_symlinks_land_where_they_point() {
    use std::os::unix::fs::MetadataExt;
    let id = unique("dangling");
    let mut b = Bundle::new(&id);
    let rootfs = b.rootfs();
    std::os::unix::fs::symlink("/tmp/foo/bar", rootfs.join("jump")).unwrap();
    std::os::unix::fs::symlink("/jump/baz/hosts", rootfs.join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink("/tmp/dir", rootfs.join("etc/dirlink")).unwrap();
    let (file, dir) = (b.dir.join("config.json"), b.dir.clone());
    let ident = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        format!("{}:{}", m.dev(), m.ino())
    };
    let want = format!(
        "/tmp/foo/bar/baz/hosts {}\n/tmp/dir {}\n1\n1\n",
        ident(&file),
        ident(&dir)
    );
    b.sh(
        "stat -c '%n %d:%i' /tmp/foo/bar/baz/hosts /tmp/dir; \
         grep -c ' /tmp/foo/bar/baz/hosts ' /proc/self/mountinfo; grep -c ' /tmp/dir ' /proc/self/mountinfo",
    )
    .edit(|c| {
        add_mount(c, json!({"destination": "/etc/hosts", "source": file, "options": ["bind"]}));
        add_mount(c, json!({"destination": "/etc/dirlink", "source": dir, "options": ["bind"]}));
    });
    assert_eq!(run_ok(&b, &id), want);
}

/// Bind sources inside earlier mounts' destinations (here given as host paths through the rootfs, destinations
/// too) see those mounts: each source is taken when its turn comes, in config order (runc's mount-order test).
/// Also in a user namespace with sources the container's user cannot reach.
#[test]
fn bind_sources_see_the_mounts_made_before_them() {
    for userns in [false, true] {
        let id = unique("mount-order");
        let mut b = Bundle::new(&id);
        let src = b.dir.join("bind-src");
        for sub in ["a/x", "b/y", "c/z"] {
            std::fs::create_dir_all(src.join(sub)).unwrap();
            std::fs::write(src.join(sub).join("file"), sub).unwrap();
            let top = &sub[..1];
            std::os::unix::fs::symlink(top, src.join(format!("sym-{top}"))).unwrap();
        }
        std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o750))
            .unwrap();
        let rootfs = b.rootfs();
        std::fs::create_dir_all(rootfs.join("mnt")).unwrap();
        std::fs::create_dir_all(rootfs.join("final")).unwrap();
        let bind = |s: PathBuf, d: String, opts: &str| json!({"source": s, "destination": d, "type": "bind", "options": [opts, "rprivate"]});
        let r = |p: &str| format!("{}{p}", rootfs.display());
        let list = [
            bind(src.join("a"), "/mnt".into(), "bind"),
            bind(src.join("sym-b"), "/mnt/x".into(), "bind"),
            bind(src.join("c"), "/mnt/x/y".into(), "bind"),
            bind(src.join("sym-a"), "/mnt/x/y/z".into(), "bind"),
            bind(rootfs.join("mnt/x"), r("/mnt/x/y/z/x"), "rbind"),
            bind(rootfs.join("mnt/x/y"), r("/mnt/x/y/z"), "rbind"),
            bind(rootfs.join("mnt"), r("/final"), "rbind"),
        ];
        b.args(&["cat", "/final/x/y/z/z/x/y/z/x/file"]).edit(|c| {
            if userns {
                with_user_ns(c);
            }
            for m in list {
                add_mount(c, m);
            }
        });
        if userns {
            chown_rootfs(&b, MAPPED_ROOT);
        }
        assert_eq!(run_ok(&b, &id), "a/x", "userns {userns}");
    }
}

/// A tmpfs without mode= takes the mode of the directory it covers (all bits, setgid and sticky included); an
/// explicit mode= wins and leaves the directory alone; over a directory berth creates, the tmpfs default (1777).
#[test]
fn tmpfs_inherits_the_mode_of_the_directory_it_covers() {
    use std::os::unix::fs::PermissionsExt;
    for (opts, want) in [
        (json!(["rw", "nodev", "nosuid"]), "710"),
        (json!(["rw", "nodev", "mode=1500"]), "1500"),
    ] {
        let id = unique("tmpfs-mode");
        let mut b = Bundle::new(&id);
        let dir = b.rootfs().join("tmpfs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710)).unwrap();
        b.args(&["stat", "-c", "%a", "/tmpfs"]).edit(|c| {
            add_mount(c, json!({"destination": "/tmpfs", "type": "tmpfs", "source": "tmpfs", "options": opts}));
        });
        assert_eq!(run_ok(&b, &id), format!("{want}\n"));
        let host = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(host, 0o710, "the covered directory itself is unchanged");
    }
    let id = unique("tmpfs-mode");
    let mut b = Bundle::new(&id);
    b.args(&["stat", "-c", "%a", "/new/dir"]).edit(|c| {
        add_mount(c, json!({"destination": "/new/dir", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]}));
    });
    assert_eq!(run_ok(&b, &id), "1777\n");
}

/// With the host's pid namespace, the host's /proc may be bound on /proc (runc's rootless host-pidns config does
/// so); any other bind there is still refused.
#[test]
fn host_pid_namespace_may_bind_the_hosts_proc() {
    for (source, ok) in [("/proc", true), ("/tmp", false)] {
        let id = unique("hostpid-proc");
        let mut b = Bundle::new(&id);
        b.sh("test -d /proc/1 && echo PROC").edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "pid");
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["type"] == "proc" {
                    *m = json!({"destination": "/proc", "type": "none", "source": source,
                                "options": ["rbind", "nosuid", "nodev", "noexec"]});
                }
            }
        });
        let berth = Berth::new();
        let (code, out, err) = berth.run_bundle(&b, &id);
        if ok {
            assert_eq!((code, out.as_str()), (0, "PROC\n"), "{err}");
        } else {
            assert_eq!(code, 1, "{out}");
            assert!(err.contains("only procfs may be mounted on /proc"), "{err}");
        }
    }
}

/// `rnorelatime` clears MOUNT_ATTR_RELATIME, which is 0: the mount keeps its atime mode (runc and runtime-tools
/// agree), where berth used to make it strictatime.
#[test]
fn rnorelatime_leaves_the_atime_mode_alone() {
    let id = unique("rnorelatime");
    let mut b = Bundle::new(&id);
    b.sh("grep ' /mnt ' /proc/self/mountinfo | cut -d' ' -f6").edit(|c| {
        add_mount(c, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["rnorelatime"]}));
    });
    let out = run_ok(&b, &id);
    assert!(per_mount_opts(out.trim()).contains(&"relatime"), "{out}");
}

/// --no-pivot leaves the host's mounts in the container's mount namespace (out of sight): a full procfs among them
/// would let the container mount a bare /proc from a user namespace of its own. berth detaches them first, as runc.
#[test]
fn no_pivot_gives_no_full_proc_to_mount_from() {
    let id = unique("nopivot-proc");
    let mut b = Bundle::new(&id);
    b.args(&[
        "unshare",
        "-mrpf",
        "sh",
        "-c",
        "mount -t proc none /proc && echo MOUNTED || echo REFUSED",
    ])
    .edit(|c| {
        for set in ["bounding", "permitted", "effective"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SETFCAP"));
        }
    });
    let berth = Berth::new();
    let out = berth.create(&b, &id, &["--no-pivot"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    berth.ok(&["start", &id]);
    assert!(wait_for("output", || !berth.stdout_of(&b, &id).is_empty()));
    assert_eq!(berth.stdout_of(&b, &id), "REFUSED\n");
}

/// A relative bind source is relative to the bundle (runtime-spec), not to the directory berth runs in: runc runs
/// from the bundle; berth is started from `/` here. The same holds for an idmapped bind.
#[test]
fn a_relative_bind_source_is_taken_from_the_bundle() {
    let id = unique("rootfs-relsrc");
    let mut b = Bundle::new(&id);
    std::fs::create_dir_all(b.dir.join("data")).unwrap();
    std::fs::write(b.dir.join("data/marker"), "from the bundle\n").unwrap();
    b.sh("cat /mnt/data/marker /mnt/idmapped/marker").edit(|c| {
        add_mount(
            c,
            json!({"destination": "/mnt/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]}),
        );
        add_mount(
            c,
            json!({"destination": "/mnt/idmapped", "type": "bind", "source": "./data",
                   "options": ["bind", "ro", "idmap"],
                   "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                   "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}),
        );
    });
    let berth = Berth::new();
    let mut c = berth.cmd();
    c.current_dir("/")
        .args(["run", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (code, out, err) = captured(bounded(c, "berth run from /"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from the bundle\nfrom the bundle\n", "{err}");
}

/// Sets `host_flags` on the source's own mount (reset first; not the superblock), as runc's mounts_sshfs.bats does,
/// then runs a container that binds it on /mnt with `opts` and prints its /proc/self/mounts line.
fn bind_of_flagged_source(
    berth: &Berth,
    src: &Path,
    host_flags: &str,
    opts: &[&str],
    userns: bool,
) -> (i32, String, String) {
    for o in [
        "remount,diratime,atime,strictatime",
        &format!("remount,{host_flags}"),
    ] {
        let st = Command::new("mount")
            .args(["--bind", "-o", o])
            .arg(src)
            .status()
            .unwrap();
        assert!(st.success(), "mount -o {o}");
    }
    let id = unique("bindflags");
    let mut b = Bundle::new(&id);
    b.sh("grep ' /mnt ' /proc/self/mounts").edit(|c| {
        if userns {
            with_user_ns(c);
        }
        add_mount(
            c,
            json!({"destination": "/mnt", "type": "bind", "source": src, "options": opts}),
        );
    });
    if userns {
        chown_rootfs(&b, MAPPED_ROOT);
    }
    berth.run_bundle(&b, &id)
}

/// A bind's atime state follows mount(2)'s bind remount, as runc's mounts_sshfs.bats "{no,rel,strict}atime
/// semantics" checks: naming no atime word keeps the source's (noatime, nodiratime), `atime`/`norelatime` clear
/// nothing that is set, and naming any replaces all of it: `nodiratime` alone gives relatime,nodiratime (the
/// source's noatime goes), `strictatime` drops the source's nodiratime.
#[test]
fn bind_atime_flags_follow_mount2() {
    let berth = Berth::new();
    let src = std::env::temp_dir().join(unique("atime-src"));
    let _host = HostMount::tmpfs(&src, false);
    for (host, opts, want, not) in [
        (
            "noatime",
            &["bind"][..],
            &["noatime"][..],
            &["relatime"][..],
        ),
        ("noatime", &["bind", "atime"], &["noatime"], &["relatime"]),
        (
            "noatime",
            &["bind", "norelatime"],
            &["noatime"],
            &["relatime"],
        ),
        (
            "noatime",
            &["bind", "relatime"],
            &["relatime"],
            &["noatime"],
        ),
        (
            "noatime",
            &["bind", "nodiratime"],
            &["relatime", "nodiratime"],
            &["noatime"],
        ),
        (
            "nodiratime",
            &["bind", "ro"],
            &["nodiratime", "relatime"],
            &[],
        ),
        (
            "nodiratime",
            &["bind", "strictatime"],
            &[],
            &["nodiratime", "relatime", "noatime"],
        ),
    ] {
        let (code, out, err) = bind_of_flagged_source(&berth, &src, host, opts, false);
        assert_eq!(code, 0, "{err}");
        let flags: Vec<&str> = out.split(' ').nth(3).unwrap_or("").split(',').collect();
        for w in want {
            assert!(flags.contains(w), "{host} + {opts:?}: {w} missing in {out}");
        }
        for n in not {
            assert!(!flags.contains(n), "{host} + {opts:?}: {n} in {out}");
        }
    }
}

/// A relative mount destination is relative to `/` (runtime-spec: deprecated, but to be read so; runc does), and
/// a namespace with an empty `path` is a new one (runc reads Go's empty string so).
#[test]
fn relative_destination_and_empty_namespace_path_as_runc() {
    let id = unique("reldest");
    let mut b = Bundle::new(&id);
    b.sh("grep -c ' /tmp/rel tmpfs ' /proc/self/mounts")
        .edit(|c| {
            add_mount(
                c,
                json!({"destination": "tmp/rel", "type": "tmpfs", "source": "tmpfs"}),
            );
            for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "mount" {
                    ns["path"] = json!("");
                }
            }
        });
    assert_eq!(run_ok(&b, &id).trim(), "1");
}

/// A bind's flag words, as runc's mounts_sshfs.bats checks them (on a tmpfs, as it falls back to here): a clearing
/// word alone (`dev`, `rw`) still makes a bind remount, so every flag not asked for goes; in a user namespace the
/// flags the kernel locked on the source (ro, nosuid, nodev, noexec, the atime state with nodiratime) stay unless
/// asked for otherwise, and asking fails with EPERM, in runc's words; nosymfollow is not lockable and goes.
#[test]
fn bind_flag_words_in_and_out_of_a_user_namespace() {
    let berth = Berth::new();
    type Case<'a> = (
        bool,
        &'a str,
        &'a [&'a str],
        Option<(&'a [&'a str], &'a [&'a str])>,
    );
    let cases: &[Case] = &[
        (
            false,
            "ro,noexec,nosymfollow,nodiratime",
            &["bind", "dev"],
            Some((&["rw", "nodiratime"], &["ro", "noexec", "nosymfollow"])),
        ),
        (
            false,
            "nosuid,nodev,noexec,noatime",
            &["bind", "dev", "suid", "exec", "atime"],
            Some((&["rw", "noatime"], &["nosuid", "nodev", "noexec"])),
        ),
        (
            true,
            "ro,noexec,nosymfollow,nodiratime",
            &["bind", "dev"],
            Some((&["ro", "noexec", "nodiratime"], &["nosymfollow"])),
        ),
        (
            true,
            "rw,nodev,nosymfollow",
            &["bind", "rw"],
            Some((&["rw", "nodev"], &["nosymfollow"])),
        ),
        (
            true,
            "nodiratime",
            &["bind", "diratime"],
            Some((&["nodiratime"], &[])),
        ),
        (true, "ro", &["bind", "rw", "nosuid", "nodev"], None),
        (
            true,
            "nodev,nosuid,noatime",
            &["bind", "dev", "suid", "exec", "atime"],
            None,
        ),
        (true, "relatime", &["bind", "nodiratime"], None),
        (true, "nodiratime", &["bind", "relatime"], None),
        (true, "strictatime", &["bind", "noatime"], None),
    ];
    for (userns, host, opts, expect) in cases {
        // A new tmpfs per case: mount(8) merges a remount's options with the mount's current ones.
        let src = std::env::temp_dir().join(unique("bindflags-src"));
        let _host = HostMount::tmpfs(&src, false);
        let (code, out, err) = bind_of_flagged_source(&berth, &src, host, opts, *userns);
        let case = format!("userns {userns}, {host} + {opts:?}");
        let Some((want, not)) = expect else {
            assert_ne!(code, 0, "{case}: should fail, got {out}");
            assert!(
                err.contains(&format!("error mounting {src:?} to rootfs at \"/mnt\""))
                    && err.contains("operation not permitted"),
                "{case}: {err}"
            );
            continue;
        };
        assert_eq!(code, 0, "{case}: {err}");
        let flags: Vec<&str> = out.split(' ').nth(3).unwrap_or("").split(',').collect();
        for w in *want {
            assert!(flags.contains(w), "{case}: {w} missing in {out}");
        }
        for n in *not {
            assert!(!flags.contains(n), "{case}: {n} in {out}");
        }
    }
}

/// A read-only root keeps the flags of the filesystem the rootfs is on (as runc): the bind remount sets every
/// flag, so leaving them out would make a rootfs on a nosuid, nodev filesystem suid- and device-capable (and in a
/// user namespace, where the kernel locks them, fail with EPERM).
#[test]
fn readonly_root_keeps_the_rootfs_mount_flags() {
    let id = unique("roflags");
    let mut b = Bundle::new(&id);
    b.sh("grep ' / ' /proc/self/mountinfo")
        .edit(|c| c["root"]["readonly"] = json!(true));
    // The rootfs on its own nosuid,nodev tmpfs, unmounted whatever happens.
    let fs = b.dir.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "nosuid,nodev", "tmpfs"])
        .arg(&fs)
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(fs.clone());
    let st = Command::new("cp")
        .arg("-a")
        .arg(b.rootfs())
        .arg(fs.join("rootfs"))
        .status()
        .unwrap();
    assert!(st.success());
    b.edit(|c| c["root"]["path"] = json!(fs.join("rootfs")));
    let out = run_ok(&b, &id);
    let root = out
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_default();
    let opts: Vec<&str> = root
        .split(' ')
        .nth(5)
        .unwrap_or_default()
        .split(',')
        .collect();
    for want in ["ro", "nosuid", "nodev"] {
        assert!(
            opts.contains(&want),
            "{want} missing from / in {opts:?}: {out:?}"
        );
    }
}
