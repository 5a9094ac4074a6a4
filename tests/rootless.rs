//! Rootless berth for real: berth run by an unprivileged user (setpriv drops to a uid that no other test uses) with
//! a bundle from `berth spec --rootless`, and berth run as uid 0 of a user namespace that is not the initial one
//! (how rootless podman calls the runtime). Each test has its own uids; its guard deletes the user's containers,
//! kills every process of those uids and removes its directories, also when the test fails.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

/// An unprivileged caller: uids `first..first+count` on the host (count 1: a plain user; more: root of a user
/// namespace mapping a range, `nested`). Its directory holds a copy of berth (the build tree need not be
/// reachable for it), its runtime dir (XDG_RUNTIME_DIR) and whatever the test shares with it.
struct Caller {
    first: u32,
    count: u32,
    dir: PathBuf,
    berth: PathBuf,
    /// For root of a user namespace: the process holding that namespace, entered with nsenter.
    holder: Option<std::process::Child>,
}

impl Caller {
    fn user(uid: u32) -> Caller {
        Caller::make(uid, 1)
    }

    /// Root of a new user namespace mapping `first..first+65536` (as rootless podman's, from subuid ranges).
    fn nested(first: u32) -> Caller {
        let mut c = Caller::make(first, 65536);
        let holder = Command::new("unshare")
            .args(["--user", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let pid = holder.id();
        c.holder = Some(holder);
        // Written by the host's root (berth's tests run as root): any range may be mapped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let map = format!("0 {first} 65536");
        loop {
            let own = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok();
            let ours = std::fs::read_link("/proc/self/ns/user").ok();
            if own.is_some() && own != ours {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "unshare did not make its user namespace"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), &map).unwrap();
        std::fs::write(format!("/proc/{pid}/gid_map"), &map).unwrap();
        c
    }

    fn make(first: u32, count: u32) -> Caller {
        let dir = std::env::temp_dir().join(unique("berth-rootless"));
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        chown(&dir.join("run"), first);
        let berth = dir.join("berth");
        std::fs::copy(BERTH, &berth).unwrap();
        std::fs::set_permissions(&berth, std::fs::Permissions::from_mode(0o755)).unwrap();
        Caller {
            first,
            count,
            dir,
            berth,
            holder: None,
        }
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Where berth keeps its state when no --root is given.
    fn state_root(&self) -> PathBuf {
        self.runtime_dir().join("berth")
    }

    /// berth as this caller, in a clean environment (no --root: the default is under test too).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = match &self.holder {
            None => {
                let mut c = Command::new("setpriv");
                let id = self.first.to_string();
                c.args(["--reuid", &id, "--regid", &id, "--clear-groups"]);
                c
            }
            Some(h) => {
                let mut c = Command::new("nsenter");
                c.args(["--user", "--target", &h.id().to_string(), "--"]);
                c
            }
        };
        c.arg("env")
            .arg("-i")
            .arg("PATH=/usr/bin:/bin")
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir().display()))
            .arg(&self.berth)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        bounded(
            self.cmd(args),
            &format!("berth {args:?} as uid {}", self.first),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} as uid {}: {}",
            self.first,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `create` or `run -d`: the container inherits berth's stdio, so no pipe (it would stay open as long as the
    /// container lives); berth's own errors go to a file.
    fn detached(&self, args: &[&str]) {
        let err_path = self.dir.join("detached.err");
        let mut c = self.cmd(args);
        c.stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap());
        let out = bounded(c, &format!("berth {args:?} as uid {}", self.first));
        assert!(
            out.status.success(),
            "berth {args:?} as uid {}: {}",
            self.first,
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
    }

    /// A bundle this caller owns; for a plain user its config is what `berth spec --rootless` wrote for it.
    fn bundle(&self, name: &str) -> Bundle {
        let mut b = Bundle::new(name);
        if self.holder.is_none() {
            let spec_dir = self.dir.join(format!("spec-{name}"));
            std::fs::create_dir(&spec_dir).unwrap();
            chown(&spec_dir, self.first);
            self.ok(&["spec", "--rootless", "--bundle", spec_dir.to_str().unwrap()]);
            let mut config: Value =
                serde_json::from_slice(&std::fs::read(spec_dir.join("config.json")).unwrap())
                    .unwrap();
            config["process"]["terminal"] = json!(false);
            config["linux"]["cgroupsPath"] = json!(b.cgroup);
            b.config = config;
            b.save();
        }
        chown_tree(&b.dir, self.first);
        b
    }

    /// Host pids of every process running as one of this caller's uids.
    fn processes(&self) -> Vec<i32> {
        let holder = self.holder.as_ref().map(|h| h.id() as i32);
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| Some(*pid) != holder)
            .filter(|pid| {
                let uid = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
                uid.is_ok_and(|u| (self.first..self.first + self.count).contains(&u))
            })
            .collect()
    }

    fn assert_nothing_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.state_root())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "state left behind: {left:?}");
        // An init may take a moment to be reaped after its last berth command returned.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.processes().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(self.processes(), Vec::<i32>::new(), "processes left behind");
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.state_root()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
        for _ in 0..3 {
            for pid in self.processes() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if let Some(mut h) = self.holder.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        remove_test_cgroup_parents();
    }
}

fn chown(path: &Path, id: u32) {
    std::os::unix::fs::chown(path, Some(id), Some(id)).unwrap();
}

fn chown_tree(path: &Path, id: u32) {
    let _ = std::os::unix::fs::lchown(path, Some(id), Some(id));
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), id);
        }
    }
}

/// The line of `text` that starts with `key`, without it.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in: {text}"))
        .trim()
}

/// No directory of the container's relative cgroup in any hierarchy.
fn assert_no_cgroup(b: &Bundle) {
    for d in own_cgroup_dirs() {
        let dir = d.join(&b.cgroup);
        assert!(!dir.exists(), "cgroup made: {}", dir.display());
    }
}

#[test]
fn an_unprivileged_user_creates_starts_execs_kills_and_deletes() {
    let user = Caller::user(47110);
    let b = user.bundle("rootless-lifecycle");
    let uid_map = &b.config["linux"]["uidMappings"][0];
    assert_eq!(
        uid_map["hostID"],
        json!(47110),
        "spec --rootless maps the caller: {uid_map}"
    );
    let id = unique("rl-life");
    let mut bundle = b;
    bundle.args(&["sleep", "1000"]);
    user.detached(&["create", "--bundle", bundle.dir.to_str().unwrap(), &id]);
    // State under $XDG_RUNTIME_DIR/berth without --root, as runc's under $XDG_RUNTIME_DIR/runc.
    assert!(
        user.state_root().join(&id).is_dir(),
        "no state in {}",
        user.state_root().display()
    );
    let state: Value = serde_json::from_str(&user.ok(&["state", &id])).unwrap();
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().unwrap();
    // Seen from the host the container's root is the user.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        field(&status, "Uid:").split_whitespace().next(),
        Some("47110"),
        "{status}"
    );
    // No cgroup was writable and the config sets no limit: the container runs without one, as runc's does.
    assert_no_cgroup(&bundle);
    user.ok(&["start", &id]);
    let out = user.ok(&[
        "exec", &id, "sh", "-c",
        "echo uid=$(id -u); echo map=$(cat /proc/self/uid_map); echo setgroups=$(cat /proc/self/setgroups)",
    ]);
    assert_eq!(field(&out, "uid="), "0");
    assert_eq!(
        field(&out, "map=").split_whitespace().collect::<Vec<_>>(),
        ["0", "47110", "1"]
    );
    assert_eq!(
        field(&out, "setgroups="),
        "deny",
        "a rootless gid map needs setgroups denied"
    );
    let code = user.run(&["exec", &id, "sh", "-c", "exit 3"]).status.code();
    assert_eq!(code, Some(3), "exec's exit code");
    let listed = user.ok(&["list", "-q"]);
    assert_eq!(listed.trim(), id);
    // Without a cgroup there is nothing to freeze: a clear refusal, the container untouched.
    let out = user.run(&["pause", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no cgroup"),
        "{out:?}"
    );
    // `kill --all` (containerd's shim, podman) reaches the init even without a cgroup to sweep.
    user.ok(&["kill", "--all", &id, "KILL"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let st: Value = serde_json::from_str(&user.ok(&["state", &id])).unwrap();
        if st["status"] == "stopped" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {}",
            st["status"]
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    user.ok(&["delete", &id]);
    user.assert_nothing_left();
}

#[test]
fn an_unprivileged_user_runs_in_the_foreground() {
    let user = Caller::user(47111);
    let mut b = user.bundle("rootless-run");
    b.sh(
        "echo uid=$(id -u) gid=$(id -g); echo map=$(cat /proc/self/gid_map); \
          echo nofile=$(ulimit -n); echo oom=$(cat /proc/self/oom_score_adj); \
          echo null=$(stat -c %t:%T /dev/null); echo x > /dev/null && echo null-writable; \
          mknod /tmp/n c 1 3 2>/dev/null && echo mknod-worked; \
          touch /sys/berth-x 2>/dev/null && echo sys-writable; exit 7",
    )
    .edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        c["process"]["oomScoreAdj"] = json!(300);
    });
    let id = unique("rl-run");
    let out = user.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(field(&stdout, "uid="), "0 gid=0");
    assert_eq!(
        field(&stdout, "map=")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "47111", "1"]
    );
    assert_eq!(field(&stdout, "nofile="), "256");
    assert_eq!(
        field(&stdout, "oom="),
        "300",
        "raising oom_score_adj needs no privilege"
    );
    // The host's /dev/null, bound: a user namespace may not make device nodes.
    assert_eq!(field(&stdout, "null="), "1:3");
    assert!(stdout.contains("null-writable"), "{stdout}");
    assert!(!stdout.contains("mknod-worked"), "{stdout}");
    assert!(!stdout.contains("sys-writable"), "{stdout}");
    user.assert_nothing_left();
}

#[test]
fn a_limit_needing_a_cgroup_the_user_may_not_write_is_refused() {
    let user = Caller::user(47112);
    let mut b = user.bundle("rootless-limit");
    b.args(&["true"]).edit(|c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 10}});
    });
    let id = unique("rl-limit");
    let out = user.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "container {id}: cannot set pids limit: container could not join or create cgroup"
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
    user.assert_nothing_left();
    assert_no_cgroup(&b);
    // Supplementary groups: setgroups(2) is denied in a rootless user namespace, so they cannot be applied.
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("resources");
        c["process"]["user"]["additionalGids"] = json!([5]);
    });
    let out = user.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("additionalGids [5]: setgroups is denied"),
        "{err}"
    );
    user.assert_nothing_left();
    // Lowering oom_score_adj needs CAP_SYS_RESOURCE on the host: refused, naming why.
    b.edit(|c| {
        c["process"]["user"]
            .as_object_mut()
            .unwrap()
            .remove("additionalGids");
        c["process"]["oomScoreAdj"] = json!(-500);
    });
    let out = user.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("set oom_score_adj to -500 (lowering it needs CAP_SYS_RESOURCE)"),
        "{err}"
    );
    user.assert_nothing_left();
    b.edit(|c| {
        c["process"].as_object_mut().unwrap().remove("oomScoreAdj");
    });
    // --rootless false: the cgroup is required, and its mkdir fails as it would for runc.
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("resources");
    });
    let out = user.run(&[
        "--rootless",
        "false",
        "run",
        "--bundle",
        b.dir.to_str().unwrap(),
        &id,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    user.assert_nothing_left();
    assert_no_cgroup(&b);
}

#[test]
fn root_inside_cannot_write_the_hosts_files() {
    let user = Caller::user(47113);
    let host = user.dir.join("host-owned");
    let own = user.dir.join("user-owned");
    std::fs::create_dir(&host).unwrap();
    std::fs::create_dir(&own).unwrap();
    std::fs::write(host.join("secret"), "s3cret").unwrap();
    std::fs::set_permissions(host.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(host.join("public"), "p").unwrap();
    chown(&own, 47113);
    let mut b = user.bundle("rootless-files");
    b.sh("touch /h/new 2>/dev/null && echo made-in-host-dir; cat /h/secret 2>/dev/null && echo read-secret; \
          echo x >> /h/public 2>/dev/null && echo appended-public; chmod 777 /h 2>/dev/null && echo chmod-host; \
          touch /u/mine && echo made-own; true")
        .edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            for (src, dst) in [(&host, "/h"), (&own, "/u")] {
                mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rw"]}));
            }
        });
    let id = unique("rl-files");
    let out = user.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for bad in [
        "made-in-host-dir",
        "read-secret",
        "appended-public",
        "chmod-host",
    ] {
        assert!(!stdout.contains(bad), "root inside did {bad}: {stdout}");
    }
    assert!(stdout.contains("made-own"), "{stdout}");
    assert_eq!(std::fs::metadata(own.join("mine")).unwrap().uid(), 47113);
    assert!(!host.join("new").exists());
    assert_eq!(std::fs::read_to_string(host.join("public")).unwrap(), "p");
    assert_eq!(
        std::fs::metadata(&host).unwrap().permissions().mode() & 0o777,
        0o755
    );
    user.assert_nothing_left();
}

/// How rootless podman calls the runtime: as uid 0 of its own user namespace (subuid range mapped), with a config
/// that has no user namespace of its own, where /sys/fs/cgroup is not writable. This one has no network
/// namespace either (podman's `--network host`), so sysfs cannot be mounted: the host's /sys is bound.
#[test]
fn root_of_a_nested_user_namespace_runs_a_container() {
    let first = 4_720_000;
    let caller = Caller::nested(first);
    let mut b = caller.bundle("rootless-nested");
    b.sh("echo map=$(cat /proc/self/uid_map); echo lo=$(cat /sys/class/net/lo/address); \
          touch /sys/berth-x 2>/dev/null && echo sys-writable; echo null=$(stat -c %t:%T /dev/null); \
          echo x > /dev/null && echo null-writable; exit 4")
        .edit(|c| {
            let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
            nss.retain(|n| n["type"] != "network");
        });
    let id = unique("rl-nested");
    let out = caller.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        field(&stdout, "map=")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", &first.to_string(), "65536"]
    );
    assert_eq!(field(&stdout, "lo="), "00:00:00:00:00:00");
    assert!(!stdout.contains("sys-writable"), "{stdout}");
    assert_eq!(field(&stdout, "null="), "1:3");
    assert!(stdout.contains("null-writable"), "{stdout}");
    assert_no_cgroup(&b);
    caller.assert_nothing_left();

    // Detached, then exec and delete, with the state in the caller's runtime dir.
    b.args(&["sleep", "1000"]);
    caller.detached(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(caller.state_root().join(&id).is_dir());
    assert_eq!(caller.ok(&["exec", &id, "id", "-u"]).trim(), "0");
    caller.ok(&["delete", "--force", &id]);
    caller.assert_nothing_left();

    // A limit: its cgroup is not writable from this namespace; refused, nothing left.
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 67108864}));
    let out = caller.run(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot set memory limit: container could not join or create cgroup"),
        "{err}"
    );
    caller.assert_nothing_left();
    assert_no_cgroup(&b);
}
