//! Where runc 1.1 and berth were seen to differ on the same bundle (issue 11), each checked against a real
//! container: capability sets as runc's default config has them, `exec --cap`, device rules for listed devices,
//! the descriptors a created container holds, a frozen cgroup, and the seccomp notify fd under noNewPrivileges.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_AUDIT_WRITE: u64 = 1 << 29;

/// `runc spec` of runc 1.1 (1.1.5 here): these three in bounding, effective, permitted and ambient, no inheritable
/// set, noNewPrivileges. Written out, as runc need not be installed where the tests run.
fn runc_default_caps(c: &mut Value) {
    let three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    set_caps(c, &three, &three, &three, None, Some(&three));
    c["process"]["noNewPrivileges"] = json!(true);
}

/// runc's default template runs: each ambient capability the kernel refuses (not inheritable) is a warning on
/// stderr, and the container goes on without it. Given an inheritable set, the same capabilities are raised.
#[test]
fn runc_default_capabilities_run_with_a_warning_per_refused_ambient_cap() {
    let berth = Berth::new();
    let three = CAP_AUDIT_WRITE | CAP_KILL | CAP_NET_BIND_SERVICE;
    for inheritable in [false, true] {
        let id = unique("compat-ambient");
        let mut b = Bundle::new(&id);
        b.args(&["cat", "/proc/self/status"]).edit(|c| {
            runc_default_caps(c);
            if inheritable {
                c["process"]["capabilities"]["inheritable"] =
                    c["process"]["capabilities"]["ambient"].clone();
            }
        });
        let (code, out, err) = berth.run_bundle(&b, &id);
        assert_eq!(code, 0, "inheritable {inheritable}: {err}");
        let sets = cap_sets(&out);
        if inheritable {
            assert_eq!(sets, [three; 5], "{out}");
            assert!(!err.contains("ambient"), "{err}");
        } else {
            assert_eq!(sets, [0, three, three, three, 0], "{out}");
            for cap in ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] {
                assert!(
                    err.lines().any(|l| l.contains("warning")
                        && l.contains(&format!("can't raise ambient capability {cap}"))),
                    "no warning for {cap}: {err}"
                );
            }
        }
    }
}

/// An inheritable capability outside the permitted set is allowed (it stays within bounding): the three sets are
/// set in one capset, as runc does, so the kernel judges them against the old sets together.
#[test]
fn inheritable_capability_outside_permitted() {
    let berth = Berth::new();
    for uid in [0u32, 1000] {
        let id = unique("compat-inh");
        let mut b = Bundle::new(&id);
        b.args(&["sleep", "100"]).edit(|c| {
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
            set_caps(
                c,
                &["CAP_CHOWN", "CAP_KILL"],
                &["CAP_KILL"],
                &["CAP_KILL"],
                Some(&["CAP_CHOWN", "CAP_KILL"]),
                None,
            );
        });
        berth.create_ok(&b, &id);
        let pid = berth.state(&id)["pid"].as_i64().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert_eq!(
            cap_sets(&status),
            [
                CAP_CHOWN | CAP_KILL,
                CAP_KILL,
                CAP_KILL,
                CAP_CHOWN | CAP_KILL,
                0
            ],
            "uid {uid}"
        );
        berth.ok(&["delete", "--force", &id]);
    }
}

/// `exec --cap X` in a container without an inheritable set adds X to bounding, effective and permitted only:
/// never to inheritable or ambient, where it would pass on to whatever the process runs (runc's CVE-2022-29162).
#[test]
fn exec_cap_stays_out_of_inheritable_and_ambient() {
    let berth = Berth::new();
    let id = unique("compat-execcap");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"]);
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    for user in ["0", "1000"] {
        let out = berth.ok(&[
            "exec",
            "--user",
            user,
            "--cap",
            "CAP_CHOWN",
            &id,
            "cat",
            "/proc/self/status",
        ]);
        let [inh, _, _, bnd, amb] = cap_sets(&out);
        assert_eq!((inh, amb), (0, 0), "user {user}: {out}");
        assert_ne!(bnd & CAP_CHOWN, 0, "user {user}: {out}");
    }
    // Root's program gets it in permitted and effective (from bounding); a non-root one does not (no ambient).
    let root = cap_sets(&berth.ok(&[
        "exec",
        "--cap",
        "CAP_CHOWN",
        &id,
        "cat",
        "/proc/self/status",
    ]));
    assert_ne!(root[1] & CAP_CHOWN, 0);
    let user = cap_sets(&berth.ok(&[
        "exec",
        "--user",
        "1000",
        "--cap",
        "CAP_CHOWN",
        &id,
        "cat",
        "/proc/self/status",
    ]));
    assert_eq!(user[1] & CAP_CHOWN, 0);
    berth.ok(&["delete", "--force", &id]);
}

/// runc's capabilities.bats "exec --cap [ambient is set from spec]": with an inheritable set in the config,
/// `exec --cap X` also asks for X in ambient (never in inheritable); the kernel raises it where the config made X
/// inheritable (CAP_SYSLOG here), and refuses it with a warning where not (CAP_NET_RAW), and the exec goes on.
#[test]
fn exec_cap_joins_ambient_when_the_config_has_an_inheritable_set() {
    let berth = Berth::new();
    let id = unique("compat-execamb");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"]).edit(|c| {
        set_caps(
            c,
            &["CAP_KILL", "CAP_CHOWN", "CAP_SYSLOG"],
            &["CAP_KILL", "CAP_CHOWN"],
            &["CAP_KILL"],
            Some(&["CAP_CHOWN", "CAP_SYSLOG"]),
            Some(&["CAP_CHOWN"]),
        )
    });
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    let inh = cap_mask(&["CAP_CHOWN", "CAP_SYSLOG"]);
    let plain = cap_sets(&berth.ok(&["exec", &id, "cat", "/proc/self/status"]));
    let kc = cap_mask(&["CAP_KILL", "CAP_CHOWN"]);
    assert_eq!(
        plain,
        [inh, kc, kc, kc | cap_mask(&["CAP_SYSLOG"]), CAP_CHOWN]
    );
    let out = berth.run(&[
        "exec",
        "--cap",
        "CAP_SYSLOG",
        "--cap",
        "CAP_NET_RAW",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    let (code, stdout, stderr) = captured(out);
    assert_eq!(code, 0, "{stderr}");
    let all = kc | cap_mask(&["CAP_SYSLOG", "CAP_NET_RAW"]);
    assert_eq!(cap_sets(&stdout), [inh, all, all, all, inh], "{stdout}");
    assert!(
        stderr.contains("can't raise ambient capability CAP_NET_RAW"),
        "{stderr}"
    );
    berth.ok(&["delete", "--force", &id]);
}

/// A device listed in linux.devices gets no allow rule of its own: denied by linux.resources.devices, the node
/// exists but writing it fails with EPERM; allowed there, the same write works. The rules' access is runc's
/// update.bats "rwa": the `a` is accepted and adds nothing (read and write).
#[test]
fn a_listed_device_denied_by_the_device_rules_stays_denied() {
    let berth = Berth::new();
    for allow in [false, true] {
        let id = unique("compat-devdeny");
        let mut b = Bundle::new(&id);
        b.sh("ls /dev/kmsg && echo berth-compat-test > /dev/kmsg && echo WROTE")
            .edit(|c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
                let rules = vec![
                    json!({"allow": false, "access": "rwm"}),
                    json!({"allow": allow, "type": "c", "major": 1, "minor": 11, "access": "rwa"}),
                ];
                c["linux"]["resources"] = json!({ "devices": rules });
            });
        let (code, out, err) = berth.run_bundle(&b, &id);
        if allow {
            assert_eq!((code, out.as_str()), (0, "/dev/kmsg\nWROTE\n"), "{err}");
        } else {
            assert_ne!(code, 0, "{out}");
            assert_eq!(out, "/dev/kmsg\n");
            assert!(err.contains("Operation not permitted"), "{err}");
        }
    }
}

/// The created container's init holds stdio, the preserved fds and its own sockets, nothing else: not a file the
/// caller left open (fd 7 here), not the exec stub's memfd. Its program still gets exactly stdio and fd 3.
#[test]
fn the_created_init_holds_no_descriptor_of_its_caller() {
    let berth = Berth::new();
    let id = unique("compat-fds");
    let mut b = Bundle::new(&id);
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '; head -c3 <&3");
    let out_file = b.dir.join("out");
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3</etc/passwd 7</etc/hostname; exec {} --root {} create --preserve-fds 1 --bundle {} {id} >{} 2>&1",
            BERTH,
            berth.root.display(),
            b.dir.display(),
            out_file.display()
        ))
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "{}",
        std::fs::read_to_string(&out_file).unwrap_or_default()
    );
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    let mut held = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        let fd: i32 = e.file_name().to_string_lossy().parse().unwrap();
        let target = std::fs::read_link(e.path()).unwrap();
        let target = target.to_string_lossy().to_string();
        held.push(format!("{fd} -> {target}"));
        match fd {
            0..=2 => {}
            3 => assert_eq!(target, "/etc/passwd"),
            _ => assert!(target.starts_with("socket:["), "fd {fd} -> {target}"),
        }
    }
    assert!(held.len() >= 4, "{held:?}");
    berth.ok(&["start", &id]);
    berth.wait_status(&id, "stopped");
    // (fd 4 is ls's own reading of the directory.)
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "0 1 2 3 4 roo");
    berth.ok(&["delete", &id]);
}

/// Receives the container process state and the notify fd; returns both.
fn receive_notify_fd(listener: UnixListener) -> std::sync::mpsc::Receiver<(Value, OwnedFd)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(receive_state_and_notify_fd(&listener));
    });
    rx
}

/// Answers one notified syscall with `val`.
fn answer_one(fd: &OwnedFd, val: i64) -> i32 {
    // SAFETY (test): zeroed plain-data structs for the notify ioctls.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    resp.id = req.id;
    resp.val = val;
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    req.data.nr
}

/// With or without noNewPrivileges, the listener has the notify fd once `create` has returned (an agent may set
/// up before the container starts, as youki's suite and runc do); a startContainer hook still runs under the
/// filter, and the program's notified mkdir is answered on that fd.
#[test]
fn notify_fd_arrives_during_create_with_and_without_nnp() {
    for nnp in [false, true] {
        let id = unique("compat-notify");
        let mut b = Bundle::new(&id);
        let sock = b.dir.join("agent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        b.with_sysc()
            .sh("cat /tmp/hooked; sysc 83 s:/tmp/notified 493")
            .edit(|c| {
                c["process"]["noNewPrivileges"] = json!(nnp);
                c["root"]["readonly"] = json!(false);
                c["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": sock,
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
                });
                c["hooks"] = json!({"startContainer": [
                    {"path": "/bin/sh", "args": ["sh", "-c", "echo hooked > /tmp/hooked"]}]});
            });
        let agent = receive_notify_fd(listener);
        let berth = Berth::new();
        berth.create_ok(&b, &id);
        let (state, fd) = agent
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("nnp {nnp}: no notify fd after create"));
        assert_eq!(berth.status(&id), "created");
        assert_eq!(state["state"]["id"], json!(id));
        assert_eq!(state["pid"], berth.state(&id)["pid"]);
        berth.ok(&["start", &id]);
        assert_eq!(answer_one(&fd, 42), libc::SYS_mkdir as i32, "nnp {nnp}");
        berth.wait_status(&id, "stopped");
        assert_eq!(berth.stdout_of(&b, &id), "hooked\nret=42\n", "nnp {nnp}");
        berth.ok(&["delete", &id]);
    }
}

/// A container whose cgroup was frozen beforehand is refused by `create` and `run -d` in runc's words, at once and
/// leaving nothing behind (the init would otherwise freeze mid-setup and create hang).
#[test]
fn a_frozen_cgroup_is_refused() {
    let berth = Berth::new();
    let id = unique("compat-frozen");
    let mut b = Bundle::new(&id);
    b.args(&["true"]);
    let v2 = std::fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_ok();
    let (dir, file, frozen) = if v2 {
        let own = own_cgroup_dirs().into_iter().next().expect("our cgroup");
        (own.join(&b.cgroup), "cgroup.freeze", "1")
    } else {
        let own = own_cgroup_dirs()
            .into_iter()
            .find(|d| d.to_string_lossy().starts_with("/sys/fs/cgroup/freezer"))
            .expect("a v1 freezer hierarchy");
        (own.join(&b.cgroup), "freezer.state", "FROZEN")
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), frozen).unwrap();
    let outcome = std::panic::catch_unwind(|| {
        for args in [&["run", "-d"][..], &["create"][..]] {
            let mut c = berth.cmd();
            c.args(args).arg("--bundle").arg(&b.dir).arg(&id);
            let child = c
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let out = wait_bounded(child, Duration::from_secs(20));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains("container's cgroup unexpectedly frozen") && err.contains(&id),
                "{args:?}: {err}"
            );
            assert!(!berth.root.join(&id).exists(), "{args:?}: state left");
        }
    });
    let _ = std::fs::write(dir.join(file), if v2 { "0" } else { "THAWED" });
    let _ = std::fs::remove_dir(&dir);
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

/// A second container in a cgroup that already holds a container's processes is refused, in runc's words, and the
/// refusal touches neither the first container nor its cgroup.
#[test]
fn a_cgroup_holding_processes_is_refused() {
    let berth = Berth::new();
    let first = unique("compat-cg1");
    let mut a = Bundle::new(&first);
    a.args(&["sleep", "1000"]);
    berth.create_ok(&a, &first);
    let cgroups = berth.cgroup_dirs(&first);
    let second = unique("compat-cg2");
    let mut b = Bundle::new(&second);
    let shared = a.config["linux"]["cgroupsPath"].clone();
    b.args(&["true"])
        .edit(|c| c["linux"]["cgroupsPath"] = shared);
    for args in [&["run", "-d"][..], &["create"][..]] {
        let mut c = berth.cmd();
        c.args(args).arg("--bundle").arg(&b.dir).arg(&second);
        let out = c.stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("container's cgroup is not empty: 1 process(es) found"),
            "{args:?}: {err}"
        );
        assert!(!berth.root.join(&second).exists(), "{args:?}: state left");
    }
    assert_eq!(berth.state(&first)["status"], "created");
    assert!(
        cgroups.iter().all(|d| d.exists()),
        "the first container's cgroup went"
    );
    berth.ok(&["delete", "--force", &first]);
}

/// Waits for `child` at most `limit`; kills it (and fails) past that.
fn wait_bounded(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kill ID 0` probes the init without signalling it; `run --keep` leaves the stopped container for `state` and
/// `delete`; `exec --ignore-paused` runs in a paused container once it is resumed (refused without the flag, in
/// runc's words); a failed `exec` exits 255, as runc's.
#[test]
fn kill_0_run_keep_exec_ignore_paused_and_exec_status() {
    let berth = Berth::new();
    let id = unique("compat-cli");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"])
        .edit(|c| c["root"]["readonly"] = json!(false));
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    berth.ok(&["kill", &id, "0"]);
    assert_eq!(berth.status(&id), "running");

    berth.ok(&["pause", &id]);
    let err = berth.fails(&["exec", &id, "true"]);
    assert!(err.contains("use --ignore-paused to override"), "{err}");
    let marker = b.rootfs().join("tmp/exec-ran");
    let child = berth
        .cmd()
        .args(["exec", "--ignore-paused", &id, "touch", "/tmp/exec-ran"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(!marker.exists(), "ran while paused");
    berth.ok(&["resume", &id]);
    let out = wait_bounded(child, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists());

    let out = berth.run(&["exec", &id, "/no/such/program"]);
    assert_eq!(out.status.code(), Some(255));
    let out = berth.run(&["exec", &id, "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    berth.ok(&["delete", "--force", &id]);

    let id = unique("compat-keep");
    let mut b = Bundle::new(&id);
    b.sh("exit 7");
    let out = berth
        .cmd()
        .args(["run", "--keep", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(berth.status(&id), "stopped");
    berth.ok(&["delete", &id]);
    assert!(!berth.root.join(&id).exists());
}

/// `--debug` without `--log` prints debug lines on stderr (runc's text format); `list` under a missing --root
/// fails; `berth spec` adds a cgroup
/// namespace only where /sys/fs/cgroup is cgroup2; help and version are laid out as runc's.
#[test]
fn debug_spec_help_and_version_as_runc() {
    let berth = Berth::new();
    // A --root that does not exist is an error for `list` (runc's words); the default root may be missing.
    let out = berth.run(&["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&format!(
                "open {}: no such file or directory",
                berth.root.display()
            )),
        "{err}"
    );
    std::fs::create_dir_all(&berth.root).unwrap();
    let out = berth.run(&["--debug", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("time=\"") && l.contains("level=debug")),
        "{err}"
    );
    assert!(berth.run(&["list"]).stderr.is_empty());

    let dir = std::env::temp_dir().join(unique("compat-spec"));
    std::fs::create_dir_all(&dir).unwrap();
    berth.ok(&["spec", "--bundle", dir.to_str().unwrap()]);
    let c: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let has_cgroup_ns = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "cgroup");
    let pure_v2 = std::fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_ok();
    assert_eq!(has_cgroup_ns, pure_v2);

    let v = berth.ok(&["--version"]);
    let lines: Vec<&str> = v.lines().collect();
    assert_eq!(lines.len(), 5, "{v}");
    assert!(
        lines[0].starts_with("berth version ") && lines[0].as_bytes()[14].is_ascii_digit(),
        "{v}"
    );
    for (line, key) in lines[1..]
        .iter()
        .zip(["commit: ", "spec: 1.", "rust: ", "seccomp: "])
    {
        assert!(line.starts_with(key), "{key}: {v}");
    }
    for flag in ["-h", "--help"] {
        let h = berth.ok(&[flag]);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "NAME:", "{h}");
        assert!(lines[1].starts_with("   berth - "), "{h}");
        for section in ["USAGE:", "VERSION:", "COMMANDS:", "GLOBAL OPTIONS:"] {
            assert!(lines.contains(&section), "{section}: {h}");
        }
    }
    for cmd in ["delete", "run", "exec"] {
        let h = berth.ok(&[cmd, "--help"]);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "NAME:", "{h}");
        assert!(lines[1].starts_with(&format!("   berth {cmd} - ")), "{h}");
        assert!(lines.contains(&"OPTIONS:"), "{h}");
    }
}

/// Duplicate additionalGids are dropped before setgroups (runc too): the kernel would keep them, listing a group
/// twice.
#[test]
fn duplicate_additional_gids_are_set_once() {
    let berth = Berth::new();
    let id = unique("compat-gids");
    let mut b = Bundle::new(&id);
    b.sh("grep Groups /proc/self/status").edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [7, 5, 7, 5, 9]});
    });
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    let groups: Vec<&str> = out
        .trim()
        .strip_prefix("Groups:")
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(groups, ["5", "7", "9"], "{out}");
}

/// `--preserve-fds N` with fewer fds open is refused: berth's own sockets would otherwise take the missing numbers
/// and pass into the container.
#[test]
fn preserve_fds_past_the_open_ones_is_refused() {
    let berth = Berth::new();
    let id = unique("compat-preserve");
    let mut b = Bundle::new(&id);
    b.args(&["true"]);
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3</etc/hostname 4<&- 5<&-; exec {} --root {} run --preserve-fds 3 --bundle {} {id}",
            BERTH,
            berth.root.display(),
            b.dir.display(),
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert_eq!(st.status.code(), Some(1), "{err}");
    assert!(err.contains("fd 4 is not open"), "{err}");
    assert!(!berth.root.join(&id).exists());
}
