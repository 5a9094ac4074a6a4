//! `--pidfd-socket` (create, run, exec) and `exec --cgroup` with real containers: the pidfd received is the
//! init's or the exec'd process's (its fdinfo `Pid:`, and a signal sent through it lands there); a missing socket
//! fails before anything exists; the exec'd process joins the named sub-cgroup, and paths leaving the container's
//! cgroup, missing sub-cgroups and unknown controllers are refused with runc's words.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::*;

/// Accepts one connection on `listener` and receives the message berth sends: its data and the pidfd. `now`: all
/// of it must be there already (nonblocking accept and receive).
fn receive_pidfd(listener: &UnixListener, now: bool) -> (String, OwnedFd) {
    listener.set_nonblocking(now).unwrap();
    let (conn, _) = listener
        .accept()
        .expect("berth connected to the pidfd socket");
    let mut buf = [0u8; 64];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut flags = nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC;
    if now {
        flags |= nix::sys::socket::MsgFlags::MSG_DONTWAIT;
    }
    let msg = nix::sys::socket::recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)
        .expect("berth sent the pidfd");
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY (test): the fd was just received and is owned by nobody else.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    let word = String::from_utf8_lossy(&buf[..n]).to_string();
    (word, fd.expect("no fd with the message"))
}

/// [`receive_pidfd`] in a thread, for a berth that runs in the foreground meanwhile.
fn pidfd_receiver(sock: &Path) -> Receiver<(String, OwnedFd)> {
    let listener = UnixListener::bind(sock).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(receive_pidfd(&listener, false));
    });
    rx
}

/// The pid a pidfd refers to, from /proc/self/fdinfo (`Pid:`).
fn pidfd_pid(fd: &OwnedFd) -> i64 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"));
    line.trim().parse().unwrap()
}

/// pidfd_send_signal(2) through the received pidfd.
fn pidfd_kill(fd: &OwnedFd, sig: i32) {
    // SAFETY (test): integer arguments and a null siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
}

fn wait_dead(pid: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{pid} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn received(rx: &Receiver<(String, OwnedFd)>, what: &str) -> (String, OwnedFd) {
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: no pidfd received"))
}

fn sleeping(name: &str) -> (String, Bundle) {
    let id = unique(name);
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    (id, b)
}

/// `create --pidfd-socket`: the pidfd arrives before create returns, is the init's, and a signal sent through it
/// stops the container.
#[test]
fn create_sends_a_pidfd_of_the_init() {
    let berth = Berth::new();
    let (id, b) = sleeping("pidfd-create");
    let sock = b.dir.join("pidfd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let out = berth.create(&b, &id, &["--pidfd-socket", sock.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Connected and sent before create returned (the socket's backlog and buffer hold both).
    let (word, fd) = receive_pidfd(&listener, true);
    assert_eq!(word, "standard");
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pidfd_pid(&fd), pid);
    assert_eq!(berth.status(&id), "created");
    // SIGTERM, as the suite's pidfd-socket.bats sends: the waiting init ends on it, as runc's does.
    pidfd_kill(&fd, libc::SIGTERM);
    berth.wait_status(&id, "stopped");
    berth.ok(&["delete", &id]);
}

/// A created container's init is its pid namespace's pid 1, which gets no signal left at its default action; it
/// handles SIGTERM, SIGINT, SIGHUP and SIGQUIT by exiting, as runc's init does (`kill` of a created container
/// stops it), and the program, once started, has them at their defaults again.
#[test]
fn created_init_ends_on_sigterm_and_the_program_gets_default_actions() {
    let berth = Berth::new();
    for sig in ["TERM", "INT", "HUP", "QUIT"] {
        let (id, b) = sleeping("pidfd-term");
        berth.create_ok(&b, &id);
        let pid = berth.state(&id)["pid"].as_i64().unwrap();
        berth.ok(&["kill", &id, sig]);
        berth.wait_status(&id, "stopped");
        wait_dead(pid);
        berth.ok(&["delete", &id]);
    }
    let id = unique("pidfd-term-started");
    let mut b = Bundle::new(&id);
    // (SigIgn is inherited from whoever ran berth: not berth's doing.)
    b.sh("grep SigCgt /proc/self/status");
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    for line in out.lines() {
        let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
        let term_kin = (1 << (libc::SIGHUP - 1))
            | (1 << (libc::SIGINT - 1))
            | (1 << (libc::SIGQUIT - 1))
            | (1 << (libc::SIGTERM - 1));
        assert_eq!(mask & term_kin, 0, "{line}");
    }
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// `run -d --pidfd-socket`: the running init's pidfd.
#[test]
fn run_detached_sends_a_pidfd_of_the_init() {
    let berth = Berth::new();
    let (id, b) = sleeping("pidfd-run");
    let sock = b.dir.join("pidfd.sock");
    let rx = pidfd_receiver(&sock);
    let st = berth
        .cmd()
        .args(["run", "-d", "--bundle", b.dir.to_str().unwrap()])
        .args(["--pidfd-socket", sock.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let (word, fd) = received(&rx, "run -d");
    assert_eq!(word, "standard");
    assert_eq!(berth.status(&id), "running");
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pidfd_pid(&fd), pid);
    pidfd_kill(&fd, libc::SIGKILL);
    berth.wait_status(&id, "stopped");
    berth.ok(&["delete", &id]);
}

fn running(berth: &Berth, name: &str) -> (String, Bundle, i64) {
    let (id, b) = sleeping(name);
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    (id, b, pid)
}

/// `berth exec -d [flags] id args...` with its stdio off our pipes (the detached process keeps them); returns the
/// exit code and stderr (to a file).
fn exec_detached(
    berth: &Berth,
    b: &Bundle,
    flags: &[&str],
    id: &str,
    args: &[&str],
) -> (i32, String) {
    let err = b.dir.join(format!("exec-{}.err", unique("e")));
    let out = berth
        .cmd()
        .args(["exec", "-d"])
        .args(flags)
        .arg(id)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    (
        out.code().unwrap_or(-1),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}

/// `exec --pidfd-socket`: the pidfd is the exec'd process's (the pid file's), a signal through it kills that
/// process and the container goes on running.
#[test]
fn exec_sends_a_pidfd_of_the_exec_process() {
    let berth = Berth::new();
    let (id, b, init) = running(&berth, "pidfd-exec");
    let sock = b.dir.join("pidfd.sock");
    let pid_file = b.dir.join("exec.pid");
    let rx = pidfd_receiver(&sock);
    let (code, err) = exec_detached(
        &berth,
        &b,
        &[
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--pidfd-socket",
            sock.to_str().unwrap(),
        ],
        &id,
        &["sleep", "1000"],
    );
    assert_eq!(code, 0, "{err}");
    let (word, fd) = received(&rx, "exec");
    assert_eq!(word, "setns");
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_ne!(pid, init);
    assert_eq!(pidfd_pid(&fd), pid);
    pidfd_kill(&fd, libc::SIGKILL);
    wait_dead(pid);
    assert_eq!(berth.status(&id), "running");
    assert!(alive(init));
    berth.ok(&["delete", "--force", &id]);
}

/// This test's cgroup directories of container `id` (as create would make them), to check none is left.
fn would_be_cgroups(b: &Bundle) -> Vec<PathBuf> {
    own_cgroup_dirs()
        .iter()
        .map(|d| d.join(&b.cgroup))
        .collect()
}

/// A socket path nobody listens on: create, run and exec fail before anything exists, naming the socket.
#[test]
fn missing_pidfd_socket_fails_cleanly() {
    let berth = Berth::new();
    let (id, b) = sleeping("pidfd-missing");
    let sock = b.dir.join("nobody.sock");
    for cmd in ["create", "run"] {
        let mut args = vec![cmd];
        if cmd == "run" {
            args.push("-d");
        }
        let bundle = b.dir.to_str().unwrap();
        args.extend([
            "--bundle",
            bundle,
            "--pidfd-socket",
            sock.to_str().unwrap(),
            &id,
        ]);
        let err = berth.fails(&args);
        assert_eq!(err.trim().lines().count(), 1, "{cmd}: {err}");
        assert!(err.contains(&id), "{cmd}: {err}");
        assert!(
            err.contains("pidfd socket") && err.contains("nobody.sock"),
            "{cmd}: {err}"
        );
        assert!(err.contains("No such file or directory"), "{cmd}: {err}");
        assert_gone(&berth, &id, &would_be_cgroups(&b), None);
    }

    // exec: no process is run (the container's cgroup holds the init alone afterwards).
    let (id, b, init) = running(&berth, "pidfd-missing-exec");
    let marker = "/tmp/pidfd-exec-ran";
    let (code, err) = exec_detached(
        &berth,
        &b,
        &["--pidfd-socket", sock.to_str().unwrap()],
        &id,
        &["sh", "-c", &format!("echo > {marker}; sleep 1000")],
    );
    assert_eq!(code, 255, "{err}");
    assert!(
        err.contains("pidfd socket") && err.contains("nobody.sock"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(200));
    for dir in berth.cgroup_dirs(&id) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), init.to_string(), "{}", dir.display());
    }
    assert!(
        !b.rootfs().join(&marker[1..]).exists(),
        "the exec'd program ran"
    );
    berth.ok(&["delete", "--force", &id]);
}

/// The container's cgroup directory in the hierarchy holding `controller` (by its mount point's name, as this
/// host and the cgroup v2 VM mount them), or None.
fn hierarchy_dir(berth: &Berth, id: &str, controller: &str) -> Option<PathBuf> {
    berth.cgroup_dirs(id).into_iter().find(|d| {
        d.strip_prefix("/sys/fs/cgroup")
            .ok()
            .and_then(|r| r.components().next())
            .is_some_and(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .split(',')
                    .any(|n| n == controller)
            })
    })
}

/// A sub-cgroup made as its owner would: a v1 cpuset one gets its parent's cpus and mems (empty, no task may
/// join it).
fn mkdir_cgroup(dir: &Path) {
    std::fs::create_dir(dir).unwrap();
    let parent = dir.parent().unwrap();
    for f in ["cpuset.cpus", "cpuset.mems"] {
        // (On v2 the sub-cgroup has the files only when the container's cgroup enables cpuset for its children.)
        if let (Ok(v), true) = (
            std::fs::read_to_string(parent.join(f)),
            dir.join(f).exists(),
        ) {
            std::fs::write(dir.join(f), v.trim()).unwrap();
        }
    }
}

fn procs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every cgroup.procs of the container (sub-cgroups included) holds the init alone: nothing ran, nothing was left.
fn only_the_init(berth: &Berth, id: &str, init: i64) {
    std::thread::sleep(Duration::from_millis(100));
    for dir in berth.cgroup_dirs(id) {
        assert_eq!(procs(&dir), vec![init.to_string()], "{}", dir.display());
    }
}

/// An exec'd process whose pid file cannot be written is ended, not left running unknown to the caller (runc too).
#[test]
fn exec_whose_pid_file_fails_leaves_no_process() {
    let berth = Berth::new();
    let (id, b, init) = running(&berth, "exec-pidfile-fail");
    let (code, err) = exec_detached(
        &berth,
        &b,
        &["--pid-file", "/nonexistent-berth-dir/exec.pid"],
        &id,
        &["sleep", "1000"],
    );
    assert_eq!(code, 255, "{err}");
    assert!(
        err.contains(&id) && err.contains("/nonexistent-berth-dir/"),
        "{err}"
    );
    only_the_init(&berth, &id, init);
    berth.ok(&["delete", "--force", &id]);
}

/// A process in a sub-cgroup is still the container's: `kill --all` reaches it, and `delete --force` kills it and
/// removes the container and its cgroup (runc reads every pid of the cgroup's tree).
#[test]
fn processes_in_sub_cgroups_are_killed_and_deleted_with_the_container() {
    for how in [&["kill", "--all"][..], &["delete", "--force"]] {
        let berth = Berth::new();
        let (id, b, _init) = running(&berth, "subcg-kill");
        let dirs = berth.cgroup_dirs(&id);
        for d in &dirs {
            mkdir_cgroup(&d.join("sub"));
        }
        let pid_file = b.dir.join("exec.pid");
        let (code, err) = exec_detached(
            &berth,
            &b,
            &["--cgroup", "sub", "--pid-file", pid_file.to_str().unwrap()],
            &id,
            &["sleep", "1000"],
        );
        assert_eq!(code, 0, "{err}");
        let pid: i64 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut args = how.to_vec();
        args.push(&id);
        if how[0] == "kill" {
            args.push("KILL");
        }
        berth.ok(&args);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(pid), "{how:?} left the sub-cgroup's process {pid}");
        if how[0] == "delete" {
            assert!(!berth.root.join(&id).exists(), "state dir left");
            assert!(dirs.iter().all(|d| !d.exists()), "cgroup left: {dirs:?}");
        }
    }
}

/// `exec --cgroup sub` (every hierarchy) and `--cgroup memory:m` (one, v1): the process is in the sub-cgroup from
/// the host's view and its own, and not in the container's cgroup itself.
#[test]
fn exec_cgroup_joins_the_sub_cgroup() {
    let berth = Berth::new();
    let (id, b, _init) = running(&berth, "exec-subcg");
    let dirs = berth.cgroup_dirs(&id);
    for d in &dirs {
        mkdir_cgroup(&d.join("sub"));
    }
    let pid_file = b.dir.join("exec.pid");
    let (code, err) = exec_detached(
        &berth,
        &b,
        &["--cgroup", "sub", "--pid-file", pid_file.to_str().unwrap()],
        &id,
        &["sleep", "1000"],
    );
    assert_eq!(code, 0, "{err}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    for d in &dirs {
        assert!(
            procs(&d.join("sub")).contains(&pid),
            "{pid} not in {}/sub",
            d.display()
        );
        assert!(!procs(d).contains(&pid), "{pid} in {}", d.display());
    }
    // Its own view (cgroup namespace of the container): every hierarchy says /sub.
    let out = berth.ok(&["exec", "--cgroup", "/sub/", &id, "cat", "/proc/self/cgroup"]);
    assert!(!out.trim().is_empty());
    for line in out.lines() {
        assert!(line.ends_with(":/sub"), "{out}");
    }
    // `--cgroup /` is the container's own cgroup.
    let out = berth.ok(&["exec", "--cgroup", "/", &id, "cat", "/proc/self/cgroup"]);
    for line in out.lines() {
        assert!(line.ends_with(":/"), "{out}");
    }

    match hierarchy_dir(&berth, &id, "memory") {
        Some(mem) => {
            mkdir_cgroup(&mem.join("m"));
            let out = berth.ok(&[
                "exec",
                "--cgroup",
                "memory:m",
                &id,
                "cat",
                "/proc/self/cgroup",
            ]);
            for line in out.lines() {
                let memory = line
                    .split(':')
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .any(|c| c == "memory");
                let want = if memory { ":/m" } else { ":/" };
                assert!(line.ends_with(want), "{line} in {out}");
            }
            // Two controllers of one hierarchy, given together.
            // (Mounted together or apart, as the suite says.)
            let cpu = hierarchy_dir(&berth, &id, "cpu");
            let cpuacct = hierarchy_dir(&berth, &id, "cpuacct");
            if let (Some(cpu), Some(cpuacct)) = (cpu, cpuacct) {
                mkdir_cgroup(&cpu.join("c"));
                if cpuacct != cpu {
                    mkdir_cgroup(&cpuacct.join("c"));
                }
                let out = berth.ok(&[
                    "exec",
                    "--cgroup",
                    "memory:m",
                    "--cgroup",
                    "cpu,cpuacct:c",
                    &id,
                    "cat",
                    "/proc/self/cgroup",
                ]);
                assert!(
                    out.lines()
                        .any(|l| l.contains(":cpu") && l.ends_with(":/c")),
                    "{out}"
                );
            }
        }
        None => skipped(
            "exec_cgroup_joins_the_sub_cgroup (per controller)",
            "no cgroup v1 memory hierarchy (cgroup v2 takes a bare path only)",
        ),
    }
    berth.ok(&["delete", "--force", &id]);
}

/// Refusals in runc's words, each before anything runs: a path climbing out of the container's cgroup, a missing
/// sub-cgroup, an unknown controller, malformed arguments.
#[test]
fn exec_cgroup_refusals() {
    let berth = Berth::new();
    let (id, b, init) = running(&berth, "exec-subcg-bad");
    let base = berth.cgroup_dirs(&id)[0].clone();
    std::fs::create_dir(base.join("a")).unwrap();
    // cgroup v2 has one hierarchy: a controller prefix is refused whatever it names.
    let unknown_controller = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "cgroup v2 has one hierarchy, give the sub-cgroup as a bare path"
    } else {
        "unknown controller whaaat in SubCgroupPaths"
    };
    let cases: &[(&[&str], &[&str])] = &[
        (&[".."], &["bad sub cgroup path: .."]),
        (&["a/../../x"], &["bad sub cgroup path: a/../../x"]),
        (&["/../.."], &["bad sub cgroup path"]),
        (
            &["nonexistent"],
            &[" adding pid ", "nonexistent", "o such file or directory"],
        ),
        (&["whaaat:/"], &[unknown_controller]),
        (
            &[":x"],
            &["invalid --cgroup argument: :x (empty <controller> prefix)"],
        ),
        (&["a", "b"], &["missing <controller>: prefix"]),
    ];
    for (cgroups, want) in cases {
        let mut flags = Vec::new();
        for c in *cgroups {
            flags.extend(["--cgroup", c]);
        }
        let marker = format!("/tmp/ran-{}", unique("m"));
        let (code, err) = exec_detached(
            &berth,
            &b,
            &flags,
            &id,
            &["sh", "-c", &format!("echo > {marker}; sleep 1000")],
        );
        assert_eq!(code, 255, "{cgroups:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{cgroups:?}: {err}");
        assert!(err.contains(&id), "{cgroups:?}: {err}");
        for w in *want {
            assert!(err.contains(w), "{cgroups:?}: want {w:?}: {err}");
        }
        only_the_init(&berth, &id, init);
    }
    berth.ok(&["delete", "--force", &id]);
}

/// The attack: a container that owns its cgroup (writable cgroup mount) plants a symlink out of it and names it
/// with --cgroup. cgroupfs refuses symlink(2) itself; should it ever not, berth's open beneath the container's
/// directory follows no symlink (tested on a plain directory in cgroups::sub's unit tests). Either way the exec
/// is refused and no process lands anywhere.
#[test]
fn exec_cgroup_symlink_planted_by_the_container_is_refused() {
    let berth = Berth::new();
    let id = unique("exec-subcg-link");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]).edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["type"] == "cgroup" {
                m["options"] = serde_json::json!(["nosuid", "noexec", "nodev", "rw"]);
            }
        }
    });
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    let init = berth.state(&id)["pid"].as_i64().unwrap();
    let dirs = berth.cgroup_dirs(&id);
    // Inside: every hierarchy's root is the container's cgroup (cgroup namespace).
    let script = "for d in /sys/fs/cgroup /sys/fs/cgroup/*; do \
                  [ -e $d/cgroup.procs ] || continue; mkdir $d/real; \
                  if [ -e $d/cpuset.cpus ]; then cat $d/cpuset.cpus > $d/real/cpuset.cpus; \
                  cat $d/cpuset.mems > $d/real/cpuset.mems; fi; \
                  ln -s / $d/evil 2>/dev/null && echo planted $d; ln -s real $d/inner 2>/dev/null && echo planted $d; \
                  done; true";
    let out = berth.ok(&["exec", &id, "sh", "-c", script]);
    for d in &dirs {
        assert!(
            d.join("real").is_dir(),
            "the container could not mkdir in {}",
            d.display()
        );
    }
    if out.contains("planted") {
        eprintln!("cgroupfs took a symlink here: {out}");
    }
    // ("inner/.." is the container's own cgroup by name, as in runc, and not an escape.)
    for name in ["evil", "inner", "inner/deeper", "real/../evil"] {
        let (code, err) = exec_detached(&berth, &b, &["--cgroup", name], &id, &["sleep", "1000"]);
        assert_eq!(code, 255, "--cgroup {name}: {err}");
        assert!(
            err.contains("error adding pid to cgroups"),
            "--cgroup {name}: {err}"
        );
        only_the_init(&berth, &id, init);
    }
    // The container's own sub-cgroup is fine.
    let out = berth.ok(&["exec", "--cgroup", "real", &id, "cat", "/proc/self/cgroup"]);
    assert!(out.lines().all(|l| l.ends_with(":/real")), "{out}");
    berth.ok(&["delete", "--force", &id]);
}
