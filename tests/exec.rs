//! `berth exec` with real containers: namespaces and cgroup joined, exit codes, the flags, process files, detached
//! processes with a pid file, terminals over a console socket, bad input, and that the setting-up process cannot be
//! reached through /proc/<pid>/exe from inside the container (CVE-2019-5736).

mod common;

use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A running container (sleeping) with its init pid.
fn running(berth: &Berth, name: &str) -> (String, Bundle, i64) {
    let id = unique(name);
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    (id, b, pid)
}

fn exec(berth: &Berth, args: &[&str]) -> (i32, String, String) {
    let out = berth
        .cmd()
        .arg("exec")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    captured(out)
}

fn ns_of(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .to_string()
}

#[test]
fn exec_joins_every_namespace_and_returns_the_exit_code() {
    let berth = Berth::new();
    let (id, _b, pid) = running(&berth, "exec-ns");
    let (code, out, err) = exec(
        &berth,
        &[
            &id,
            "sh",
            "-c",
            "for n in mnt pid net ipc uts cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; \
             echo mypid=$$; hostname; exit 3",
        ],
    );
    assert_eq!(code, 3, "stderr: {err}");
    for kind in ["mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        let want = format!("{kind}={}", ns_of(pid, kind));
        assert!(out.contains(&want), "{want} not in {out}");
        assert_ne!(
            ns_of(pid, kind),
            host_ns(kind),
            "{kind}: test needs a new ns"
        );
    }
    let inner_pid: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("mypid="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inner_pid < 100,
        "not in the container's pid namespace: {inner_pid}"
    );
    assert!(out.contains("berth"), "hostname: {out}");

    // Death by a signal: 128+N.
    let (code, _, err) = exec(&berth, &[&id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(code, 137, "{err}");
    // A program that does not exist: a clear error, exit 255 as runc's exec (nothing was run).
    let (code, _, err) = exec(&berth, &[&id, "no-such-program"]);
    assert_eq!(code, 255);
    assert!(
        err.contains("no-such-program") && err.contains(&id),
        "{err}"
    );
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_flags_shape_the_process() {
    let berth = Berth::new();
    let (id, _b, _pid) = running(&berth, "exec-flags");
    let (code, out, err) = exec(
        &berth,
        &[
            "-e",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "-u",
            "1000:1000",
            "-g",
            "5",
            "-g",
            "7",
            "--cap",
            "CAP_CHOWN",
            "--no-new-privs",
            &id,
            "sh",
            "-c",
            "echo foo=$FOO; pwd; echo ids=$(id -u):$(id -g); echo groups=$(id -G); \
             grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("foo=bar"), "{out}");
    assert!(out.contains("/tmp\n"), "{out}");
    assert!(out.contains("ids=1000:1000"), "{out}");
    assert!(out.contains("groups=1000 5 7"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // CAP_CHOWN (bit 0) is added to the bounding set, never through the ambient set to a non-root user's program
    // (runc's CVE-2022-29162; tests/compat.rs checks every set).
    let set = |key: &str| {
        let v = out.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    assert_eq!(set("CapBnd:\t") & 1, 1, "CAP_CHOWN not in bounding: {out}");
    assert_eq!(set("CapEff:\t") & 1, 0, "CAP_CHOWN effective: {out}");
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_process_file_and_its_errors() {
    let berth = Berth::new();
    let (id, b, _pid) = running(&berth, "exec-pfile");
    let pf = b.dir.join("process.json");
    let good = json!({
        "args": ["sh", "-c", "echo from-file-$X; exit 4"],
        "env": ["PATH=/bin", "X=1"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    });
    std::fs::write(&pf, good.to_string()).unwrap();
    let (code, out, err) = exec(&berth, &["--process", pf.to_str().unwrap(), &id]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(out.trim(), "from-file-1");

    let mut unknown = good.clone();
    unknown["argz"] = json!(["x"]);
    std::fs::write(&pf, unknown.to_string()).unwrap();
    let err = berth.fails(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert!(
        err.contains("unknown field \"argz\"") && err.contains("process.json"),
        "{err}"
    );

    let mut wrong = good.clone();
    wrong["user"]["uid"] = json!("root");
    std::fs::write(&pf, wrong.to_string()).unwrap();
    let err = berth.fails(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert!(err.contains("invalid type"), "{err}");

    std::fs::write(&pf, "{not json").unwrap();
    let err = berth.fails(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert!(err.contains("process.json"), "{err}");
    berth.ok(&["delete", "--force", &id]);
}

/// Issue 13: an exec process (a process file, or the flags) gets config.json's checks, in its words and naming the
/// field, before anything is cloned: a refused one leaves nothing running in the container.
#[test]
fn exec_process_is_checked_as_config_json_and_a_refused_one_runs_nothing() {
    let berth = Berth::new();
    let (id, b, pid) = running(&berth, "exec-pcheck");
    let pf = b.dir.join("process.json");
    let procs = || {
        let mut pids: Vec<String> = berth
            .cgroup_dirs(&id)
            .iter()
            .flat_map(|d| {
                let text = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                text.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        pids.sort();
        pids.dedup();
        pids
    };
    assert_eq!(procs(), [pid.to_string()], "the test needs the init alone");
    let cases = [
        (
            json!({"args": [], "cwd": "/"}),
            "process.args: must name a program",
        ),
        (
            json!({"args": ["true"], "capabilities": {"bounding": ["CAP_KILL", "CAP_BOGUS"]}}),
            "process.capabilities.bounding[1] \"CAP_BOGUS\": unknown capability",
        ),
        (
            json!({"args": ["true"], "env": ["PATH=/bin", "X"]}),
            "process.env[1] \"X\": not KEY=value",
        ),
        (
            json!({"args": ["true"], "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 8}]}),
            "process.rlimits[0] RLIMIT_NOFILE: soft limit 9 is above the hard limit 8",
        ),
    ];
    for (doc, want) in cases {
        std::fs::write(&pf, doc.to_string()).unwrap();
        let (code, _, err) = exec(&berth, &["--process", pf.to_str().unwrap(), &id]);
        assert_eq!(code, 255, "{doc}: {err}");
        assert!(
            err.contains(want) && err.contains("process.json") && err.contains(&id),
            "{doc}: {err}"
        );
        assert_eq!(procs(), [pid.to_string()], "{doc}: left something running");
    }
    // A flag is checked as the field it sets.
    let (code, _, err) = exec(&berth, &["--cwd", "rel", &id, "true"]);
    assert_eq!(code, 255, "{err}");
    assert!(
        err.contains("process.cwd \"rel\": must be an absolute path"),
        "{err}"
    );
    assert_eq!(procs(), [pid.to_string()]);
    assert_eq!(berth.status(&id), "running");
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_detached_writes_the_pid_file_and_joins_the_cgroup() {
    let berth = Berth::new();
    let (id, b, _pid) = running(&berth, "exec-detach");
    let pid_file = b.dir.join("exec.pid");
    let start = Instant::now();
    // Its stdio must not be a pipe of ours: the detached process keeps it open.
    let st = berth
        .cmd()
        .args([
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sleep",
            "1000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(start.elapsed() < Duration::from_secs(5), "exec -d waited");
    let text = std::fs::read_to_string(&pid_file).unwrap();
    let pid: i64 = text.parse().expect("the pid file is a bare integer");
    assert!(alive(pid));
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\u{0}1000\u{0}");
    // In every cgroup of the container.
    for dir in berth.cgroup_dirs(&id) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{pid} not in {}",
            dir.display()
        );
    }
    // And not dumpable-leaking anything: it is now the container's program, killed with the container.
    berth.ok(&["delete", "--force", &id]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "exec'd process survived delete --force");
}

#[test]
fn exec_into_stopped_or_missing_containers_fails_clearly() {
    let berth = Berth::new();
    let id = unique("exec-stopped");
    let mut b = Bundle::new(&id);
    b.args(&["true"]);
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    berth.wait_status(&id, "stopped");
    let err = berth.fails(&["exec", &id, "true"]);
    assert!(err.contains(&id) && err.contains("stopped"), "{err}");
    berth.ok(&["delete", &id]);
    let err = berth.fails(&["exec", "no-such-container-x", "true"]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn exec_with_a_terminal_over_the_console_socket() {
    let berth = Berth::new();
    let (id, b, _pid) = running(&berth, "exec-tty");
    let sock = b.dir.join("exec-console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let st = berth
        .cmd()
        .args([
            "exec",
            "-t",
            "-d",
            "--console-socket",
            sock.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "tty; [ -t 1 ] && echo out-is-tty; sleep 1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let (name, master) = common::tty::receive_master(&listener);
    assert_eq!(name, "/dev/ptmx");
    let text = common::tty::read_until(&master, "out-is-tty");
    assert!(text.contains("/dev/pts/"), "{text}");
    berth.ok(&["delete", "--force", &id]);
}

/// CVE-2019-5736: while `berth exec` sets up (here: held reading the container's /etc/passwd, a FIFO, as it
/// looks up HOME after dropping to the process's user and capabilities), the container's root looks for it in
/// /proc and tries to resolve and open its /proc/<pid>/exe for writing. Both must be denied (it is non-dumpable).
#[test]
fn exec_process_cannot_be_reached_through_proc_exe_while_it_sets_up() {
    let berth = Berth::new();
    let id = unique("exec-cve");
    let mut b = Bundle::new(&id);
    let passwd = b.rootfs().join("etc/passwd");
    std::fs::remove_file(&passwd).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(&passwd)
        .status()
        .unwrap();
    assert!(st.success());
    let script = r#"
        while :; do
          for d in /proc/[0-9]*; do
            [ "$(cat $d/comm 2>/dev/null)" = berth ] || continue
            if readlink $d/exe >/dev/null 2>&1; then echo readlink-allowed; else echo readlink-denied; fi > /dev/shm/result
            if (: >> $d/exe) 2>/dev/null; then echo open-write-allowed; else echo open-write-denied; fi >> /dev/shm/result
            echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
            exec sleep 1000
          done
        done"#;
    b.sh(script).edit(|c| {
        // The init itself must not read /etc/passwd (it would block on the FIFO).
        c["process"]["env"] = json!(["PATH=/bin", "HOME=/root"]);
    });
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    let pf = b.dir.join("p.json");
    std::fs::write(
        &pf,
        json!({"args": ["cat", "/dev/shm/result"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
               "capabilities": {"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]}})
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = exec(&berth, &["--process", pf.to_str().unwrap(), &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("readlink-denied"), "{out}");
    assert!(out.contains("open-write-denied"), "{out}");
    berth.ok(&["delete", "--force", &id]);
}

/// Issue 13: the init and `berth exec` share one process setup, so the same config gives both the same process:
/// seccomp (with and without noNewPrivileges), user and groups, capabilities, rlimits, umask, cwd, no_new_privs and
/// the descriptors (stdio plus the preserved one). The script prints all of it; the outputs must be equal.
#[test]
fn exec_gets_the_same_process_setup_as_the_init() {
    let berth = Berth::new();
    let script = "mkdir /tmp/blocked 2>&1; id; ulimit -n; umask; pwd; \
                  grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; ls /proc/self/fd; exit 0";
    for nnp in [false, true] {
        let id = unique("exec-same");
        let mut b = Bundle::new(&id);
        std::fs::create_dir_all(b.rootfs().join("home/user")).unwrap();
        b.sh(script).edit(|c| {
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1000, "additionalGids": [5], "umask": 63});
            c["process"]["cwd"] = json!("/home/user");
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
            c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"],
                "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"],
                "inheritable": ["CAP_KILL"]});
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
        });
        let with_fd3 = |args: &[&str]| {
            let out = std::process::Command::new("sh")
                .args([
                    "-c",
                    "exec 3</dev/null; exec \"$0\" \"$@\"",
                    BERTH,
                    "--root",
                ])
                .arg(&berth.root)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            captured(out)
        };
        let bundle = b.dir.to_str().unwrap().to_string();
        let (code, init_out, err) =
            with_fd3(&["run", "--preserve-fds", "1", "--bundle", &bundle, &id]);
        assert_eq!(code, 0, "{err}");
        assert!(init_out.contains("Operation not permitted"), "{init_out}");
        assert!(init_out.contains("uid=1000"), "{init_out}");

        b.args(&["sleep", "1000"]);
        berth.create_ok(&b, &id);
        berth.ok(&["start", &id]);
        let (code, exec_out, err) =
            with_fd3(&["exec", "--preserve-fds", "1", &id, "sh", "-c", script]);
        berth.ok(&["delete", "--force", &id]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            exec_out, init_out,
            "noNewPrivileges {nnp}: exec differs from the init"
        );
    }
}
