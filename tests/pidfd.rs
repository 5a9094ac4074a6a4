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

/// Accepts one connection on `sock` and receives the message berth sends: its data and the pidfd.
fn pidfd_receiver(sock: &Path) -> Receiver<(String, OwnedFd)> {
    let listener = UnixListener::bind(sock).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY (test): the fd was just received and is owned by nobody else.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = msg.bytes;
        let word = String::from_utf8_lossy(&buf[..n]).to_string();
        let _ = tx.send((word, fd.expect("no fd with the message")));
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
    let rx = pidfd_receiver(&sock);
    let out = berth.create(&b, &id, &["--pidfd-socket", sock.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (word, fd) = rx
        .try_recv()
        .expect("the pidfd must have arrived when create returns");
    assert_eq!(word, "standard");
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pidfd_pid(&fd), pid);
    assert_eq!(berth.status(&id), "created");
    pidfd_kill(&fd, libc::SIGKILL);
    berth.wait_status(&id, "stopped");
    berth.ok(&["delete", &id]);
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
