//! linux.seccomp with real containers: podman's default profile, every action, every operator (64-bit values with
//! differences in either word), the x86 ABIs, and a notify listener that answers a syscall. The container runs
//! tests/helpers/sysc (raw syscalls; prints `ret=N` or `errno=N`).

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use common::*;
use serde_json::{json, Value};

const X32: u64 = 0x4000_0000;

/// Runs `script` under `seccomp`; returns (exit code, stdout, stderr).
fn run_with(name: &str, seccomp: Value, nnp: bool, script: &str) -> (i32, String, String) {
    let id = unique(name);
    let mut b = Bundle::new(&id);
    b.with_sysc().sh(script).edit(|c| {
        c["linux"]["seccomp"] = seccomp;
        c["process"]["noNewPrivileges"] = json!(nnp);
    });
    let berth = Berth::new();
    berth.run_bundle(&b, &id)
}

/// podman's conversion of its profile format (archMap, includes/excludes by arch and caps, name/names) to
/// linux.seccomp for an amd64 host and the capability set `caps`.
fn podman_profile(caps: &[&str]) -> Value {
    let raw = std::fs::read("/usr/share/containers/seccomp.json")
        .expect("podman's profile (make deps installs golang-github-containers-common)");
    let p: Value = serde_json::from_slice(&raw).unwrap();
    let mut arches = Vec::new();
    for m in p["archMap"].as_array().unwrap() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            arches.push(m["architecture"].clone());
            arches.extend(m["subArchitectures"].as_array().unwrap().iter().cloned());
        }
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut syscalls = Vec::new();
    for s in p["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        if list(&exc["arches"]).iter().any(|a| a == "amd64")
            || list(&exc["caps"])
                .iter()
                .any(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        let inc_arches = list(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == "amd64") {
            continue;
        }
        if !list(&inc["caps"])
            .iter()
            .all(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        let names = match s.get("name").and_then(|n| n.as_str()) {
            Some(n) if !n.is_empty() => vec![n.to_string()],
            _ => list(&s["names"]),
        };
        let mut e = json!({"names": names, "action": s["action"]});
        if let Some(args) = s["args"].as_array() {
            e["args"] = json!(args);
        }
        if let Some(r) = s.get("errnoRet") {
            e["errnoRet"] = r.clone();
        }
        syscalls.push(e);
    }
    json!({
        "defaultAction": p["defaultAction"],
        "defaultErrnoRet": p["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": syscalls,
    })
}

const PODMAN_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

#[test]
fn podman_default_profile_blocks_and_allows() {
    let id = unique("sc-podman");
    let mut b = Bundle::new(&id);
    let calls: &[(&str, &str)] = &[
        ("39", "ret="),                                // getpid: allowed
        ("83 s:/tmp/d 493", "ret=0"),                  // mkdir: allowed
        ("161 s:/", "ret=0"),                          // chroot: allowed with CAP_SYS_CHROOT
        ("135 0xffffffff", "ret=0"), // personality(query): allowed by an argument rule
        ("135 0x0040000", "errno=38"), // personality(ADDR_NO_RANDOMIZE): the default, ENOSYS
        ("167 s:/x 0", "errno=1"),   // swapon: EPERM rule
        ("321 0 0 0", "errno=1"),    // bpf without CAP_SYS_ADMIN
        ("41 16 3 9", "errno=22"),   // socket(NETLINK_AUDIT) without CAP_AUDIT_WRITE: EINVAL
        ("41 1 1 0", "ret="),        // socket(AF_UNIX): allowed by the NE rules
        ("-32 20", "ret="),          // i386 getpid: allowed
        ("-32 34 0", "errno=1"),     // i386 nice: EPERM rule
        ("-32 87 s:/x 0", "errno=1"), // i386 swapon
        (&format!("{} s:/x 0", X32 + 167), "errno=1"), // x32 swapon: the filter answers before the kernel
    ];
    let script: Vec<String> = calls.iter().map(|(c, _)| format!("sysc {c}")).collect();
    b.with_sysc().sh(&script.join("; ")).edit(|c| {
        c["linux"]["seccomp"] = podman_profile(&PODMAN_CAPS);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = json!(PODMAN_CAPS);
        }
        c["process"]["capabilities"]["inheritable"] = json!([]);
        c["process"]["capabilities"]["ambient"] = json!([]);
        c["root"]["readonly"] = json!(false);
    });
    let berth = Berth::new();
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), calls.len(), "{out}");
    for ((call, want), got) in calls.iter().zip(&lines) {
        assert!(got.starts_with(want), "sysc {call}: got {got}, want {want}");
    }
}

/// Each action, once with the filter loaded before the capabilities are dropped (no noNewPrivileges) and once
/// just before execve (noNewPrivileges).
/// berth's last execve normally goes through a sealed stub (CVE-2019-5736, see src/process/exec_stub.rs) by
/// execveat. A profile that kills execveat must not kill the container: berth sees that the stub's calls would not
/// pass the filter and execs the program directly, both for the init and for `berth exec`.
#[test]
fn a_profile_that_kills_execveat_still_runs_the_program() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    let (code, out, err) = run_with("sc-noexecveat", profile.clone(), true, "echo ran-directly");
    assert_eq!((code, out.trim()), (0, "ran-directly"), "stderr: {err}");

    let id = unique("sc-noexecveat-exec");
    let mut b = Bundle::new(&id);
    b.sh("exec sleep 1000")
        .edit(|c| c["linux"]["seccomp"] = profile);
    let berth = Berth::new();
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    let out = berth.run(&["exec", &id, "echo", "exec-ran"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "exec-ran",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn every_action_from_inside() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
            {"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getcpu"], "action": "SCMP_ACT_TRAP"},
            {"names": ["sysinfo"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["times"], "action": "SCMP_ACT_KILL"},
            {"names": ["acct"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["getrusage"], "action": "SCMP_ACT_LOG"},
            {"names": ["getitimer"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["no_such_syscall_anywhere"], "action": "SCMP_ACT_KILL"}
        ]
    });
    let script =
        "for c in '140 0 0' 24 '309 0 0 0' '99 0' '100 0' '163 0' '98 99 0' '36 0 0' 39; do \
                  sysc $c; echo rc=$?; done";
    for nnp in [false, true] {
        let (code, out, err) = run_with("sc-actions", profile.clone(), nnp, script);
        assert_eq!(code, 0, "nnp {nnp}: {err}");
        let got: Vec<&str> = out.lines().collect();
        let want = [
            "errno=42", "rc=0", // ERRNO with errnoRet
            "errno=1", "rc=0",   // ERRNO without: EPERM
            "rc=159", // TRAP: SIGSYS (128 + 31)
            "rc=159", // KILL_PROCESS: SIGSYS
            "rc=159", // KILL (thread): SIGSYS
            "rc=159", // KILL_THREAD
            "errno=22", "rc=0", // LOG: the syscall ran (getrusage(99): EINVAL)
            "errno=38", "rc=0", // TRACE with no tracer: ENOSYS
            "ret=", "rc=0", // ALLOW
        ];
        assert_eq!(got.len(), want.len(), "nnp {nnp}: {out}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "nnp {nnp}: got {g}, want {w}\n{out}");
        }
    }
}

/// Each operator on argument 3 (which these syscalls ignore, but the filter sees) against values on both sides of
/// a comparand with a non-zero high word.
#[test]
fn every_operator_with_64_bit_arguments() {
    let v: u64 = 0x1_0000_0005;
    type Op = (&'static str, u32, fn(u64) -> bool);
    let ops: [Op; 7] = [
        ("SCMP_CMP_EQ", 146, |a| a == 0x1_0000_0005),
        ("SCMP_CMP_NE", 147, |a| a != 0x1_0000_0005),
        ("SCMP_CMP_LT", 124, |a| a < 0x1_0000_0005),
        ("SCMP_CMP_LE", 140, |a| a <= 0x1_0000_0005),
        ("SCMP_CMP_GT", 145, |a| a > 0x1_0000_0005),
        ("SCMP_CMP_GE", 143, |a| a >= 0x1_0000_0005),
        // (a & 0xffffffff0000000f) == 0x100000005
        ("SCMP_CMP_MASKED_EQ", 252, |a| {
            a & 0xffff_ffff_0000_000f == 0x1_0000_0005
        }),
    ];
    let mut syscalls = Vec::new();
    for (i, (op, nr, _)) in ops.iter().enumerate() {
        let name = match nr {
            146 => "sched_get_priority_max",
            147 => "sched_get_priority_min",
            124 => "getsid",
            140 => "getpriority",
            145 => "sched_getscheduler",
            143 => "sched_getparam",
            _ => "ioprio_get",
        };
        let (value, two) = if *op == "SCMP_CMP_MASKED_EQ" {
            (0xffff_ffff_0000_000fu64, v)
        } else {
            (v, 0)
        };
        syscalls.push(
            json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 100 + i,
            "args": [{"index": 3, "value": value, "valueTwo": two, "op": op}]}),
        );
    }
    let probes: [u64; 7] = [
        5,
        v - 1,
        v,
        v + 1,
        0x2_0000_0005,
        0x1_0000_0035,
        0xffff_ffff_ffff_ffff,
    ];
    let mut script = Vec::new();
    let mut want = Vec::new();
    for (i, (op, nr, f)) in ops.iter().enumerate() {
        for a in probes {
            script.push(format!("{nr} 99999 0 0 {a:#x}"));
            want.push((format!("{op} {a:#x}"), f(a), 100 + i));
        }
    }
    let (code, out, err) = run_with(
        "sc-ops",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls}),
        true,
        &format!("sysc {}", script.join(" -- ")),
    );
    assert_eq!(code, 0, "{err}");
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), want.len(), "{out}");
    for (g, (what, hit, errno)) in got.iter().zip(want) {
        let blocked = *g == format!("errno={errno}");
        assert_eq!(blocked, hit, "{what}: got {g}");
    }
}

/// Receives the container process state and the notify fd from berth, answers one mkdir with 42, and returns the
/// state it received.
fn notify_agent(listener: UnixListener) -> std::thread::JoinHandle<Value> {
    std::thread::spawn(move || {
        let (state, fd) = receive_state_and_notify_fd(&listener);

        // SAFETY (test): zeroed plain-data structs for the notify ioctls.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
        assert_eq!(req.data.nr, libc::SYS_mkdir as i32);
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = req.id;
        resp.val = 42;
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
        state
    })
}

/// A bundle running `script` (with sysc) whose profile notifies mkdir to a listener in the bundle directory, plus
/// that listener; `extra` adds fields to linux.seccomp.
fn notify_bundle(id: &str, nnp: bool, script: &str, extra: Value) -> (Bundle, UnixListener) {
    let mut b = Bundle::new(id);
    let sock = b.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    b.with_sysc().sh(script).edit(|c| {
        c["process"]["noNewPrivileges"] = json!(nnp);
        c["root"]["readonly"] = json!(false);
        let mut seccomp = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "meta-data",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
        for (k, v) in extra.as_object().unwrap() {
            seccomp[k] = v.clone();
        }
        c["linux"]["seccomp"] = seccomp;
    });
    (b, listener)
}

#[test]
fn notify_sends_the_fd_and_state_to_the_listener() {
    for nnp in [false, true] {
        let id = unique("sc-notify");
        let (b, listener) = notify_bundle(
            &id,
            nnp,
            "sysc 83 s:/tmp/notified 493; sysc 84 s:/tmp/notified",
            json!({"architectures": ["SCMP_ARCH_X86_64"],
                   "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
        );
        let agent = notify_agent(listener);
        let berth = Berth::new();
        let (code, out, err) = berth.run_bundle(&b, &id);
        let state = agent.join().unwrap();
        assert_eq!(code, 0, "nnp {nnp}: {err}");
        // mkdir answered by the agent (42) without running: the rmdir that follows finds nothing.
        assert_eq!(out, "ret=42\nerrno=2\n", "nnp {nnp}");
        assert_eq!(state["fds"], json!(["seccompFd"]));
        assert_eq!(state["metadata"], "meta-data");
        assert_eq!(state["state"]["id"], json!(id));
        assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
        assert_eq!(state["pid"], state["state"]["pid"]);
        assert!(state["ociVersion"].is_string());
    }
}

#[test]
fn exec_sends_its_own_notify_fd_to_the_listener() {
    for nnp in [false, true] {
        let id = unique("sc-notify-exec");
        let (b, listener) = notify_bundle(
            &id,
            nnp,
            "sysc 83 s:/tmp/init 493; exec sleep 1000",
            json!({}),
        );
        let init_agent = notify_agent(listener.try_clone().unwrap());
        let berth = Berth::new();
        berth.create_ok(&b, &id);
        berth.ok(&["start", &id]);
        // The init's own mkdir is answered on the connection create made.
        let init_state = init_agent.join().unwrap();
        let init_pid = berth.state(&id)["pid"].clone();
        assert_eq!(init_state["pid"], init_pid);

        let exec_agent = notify_agent(listener);
        let pid_file = b.dir.join("exec.pid");
        let out = berth
            .cmd()
            .arg("exec")
            .arg("--pid-file")
            .arg(&pid_file)
            .args([&id, "sh", "-c", "sysc 83 s:/tmp/exec 493 -- 84 s:/tmp/exec"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let (code, out, err) = captured(out);
        // Checked before joining the agent: without a notify fd of its own it would wait for a connection forever.
        assert_eq!(code, 0, "nnp {nnp}: {err}");
        assert_eq!(out, "ret=42\nerrno=2\n", "nnp {nnp}: {err}");
        let state = exec_agent.join().unwrap();
        let exec_pid: i64 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(state["pid"], json!(exec_pid), "nnp {nnp}: {state}");
        assert_eq!(state["state"]["pid"], init_pid);
        assert_eq!(state["state"]["status"], "running");
        assert_eq!(state["state"]["id"], json!(id));
        assert_eq!(state["fds"], json!(["seccompFd"]));
        assert_eq!(state["metadata"], "meta-data");
        // The agent is gone (its listener closed with it): exec fails before anything runs, with one clear line.
        let err = berth.fails(&["exec", &id, "true"]);
        // runc's words ("failed to connect with seccomp agent"), the path and the container.
        assert!(
            err.contains("failed to connect with seccomp agent")
                && err.contains("listenerPath")
                && err.contains(&id),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        berth.ok(&["delete", "--force", &id]);
    }
}

/// The flags seccomp(2) gets, as `--debug` reports them in runc's words (`seccomp filter flags: N`): no `flags`
/// means SPEC_ALLOW (4) as in runc, an empty list none, LOG is 2, TSYNC adds nothing (berth loads the filter
/// single-threaded), and a notify rule adds NEW_LISTENER (8).
#[test]
fn filter_flags_default_to_spec_allow_and_are_reported() {
    let berth = Berth::new();
    let deny_mkdir = json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]);
    for (flags, want) in [
        (None, 4),
        (Some(json!([])), 0),
        (
            Some(json!([
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_TSYNC"
            ])),
            2,
        ),
        (
            Some(json!([
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                "SECCOMP_FILTER_FLAG_LOG"
            ])),
            6,
        ),
    ] {
        let id = unique("sc-flags");
        let mut b = Bundle::new(&id);
        let mut profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": deny_mkdir});
        if let Some(f) = &flags {
            profile["flags"] = f.clone();
        }
        b.sh("mkdir /tmp/x && echo made")
            .edit(|c| c["linux"]["seccomp"] = profile);
        let out = berth.run(&["--debug", "run", "--bundle", b.dir.to_str().unwrap(), &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?}: mkdir was allowed");
        assert!(
            err.contains(&format!("seccomp filter flags: {want}\"")),
            "{flags:?}: want {want}: {err}"
        );
    }
}

/// A startContainer hook runs in the container under its seccomp filter (as runc): killed by it, the hook's error
/// names the signal in Go's words, as runc's does (`signal: bad system call`).
#[test]
fn start_container_hook_runs_under_the_filter() {
    let id = unique("sc-hook");
    let mut b = Bundle::new(&id);
    b.args(&["true"]).edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/hooked"]}]});
    });
    let berth = Berth::new();
    let (code, _, err) = berth.run_bundle(&b, &id);
    assert_ne!(code, 0);
    assert!(
        err.contains("error running startContainer hook #0: /bin/sh: signal: bad system call"),
        "{err}"
    );
}

#[test]
fn bad_profiles_fail_create_cleanly() {
    let berth = Berth::new();
    for (profile, expect) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "/nonexistent/agent.sock",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "index 7",
        ),
    ] {
        let id = unique("sc-bad");
        let mut b = Bundle::new(&id);
        b.edit(|c| c["linux"]["seccomp"] = profile);
        let out = berth.create(&b, &id, &[]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{id} should fail");
        assert!(err.contains(expect), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!berth.root.join(&id).exists(), "state dir left behind");
    }
}
