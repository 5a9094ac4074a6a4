//! Terminals over --console-socket, as containerd's shim and conmon use them: the test plays the client, receives
//! the pty master (runc's message: one SCM_RIGHTS fd, the name "/dev/ptmx" as data), talks to the container through
//! it, and checks consoleSize, /dev/console and the controlling terminal.

mod common;

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

/// Accepts one connection on the console socket and receives the master the way go-runc's console code does.
pub fn receive_master(listener: &UnixListener) -> (String, OwnedFd) {
    listener.set_nonblocking(false).unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut name = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut name)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(f) = c {
            fds.extend(f);
        }
    }
    let n = msg.bytes;
    assert_eq!(fds.len(), 1, "exactly one fd must come with the message");
    let name = String::from_utf8_lossy(&name[..n]).to_string();
    // SAFETY: the fd was just received over SCM_RIGHTS and belongs to us.
    (name, unsafe { OwnedFd::from_raw_fd(fds[0]) })
}

/// Reads from the master until `want` shows up (bounded); returns everything read.
fn read_until(master: &OwnedFd, want: &str) -> String {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains(want) {
        assert!(
            Instant::now() < deadline,
            "no {want:?} on the terminal; got {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(200u16)).unwrap() == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read master: {e}"),
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

fn terminal_bundle(id: &str, script: &str) -> Bundle {
    let mut b = Bundle::new(id);
    b.sh(script).edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    });
    b
}

#[test]
fn console_socket_receives_a_working_pty_master() {
    let id = unique("tty");
    let b = terminal_bundle(
        &id,
        "stty size; tty; [ -t 0 ] && echo stdin-is-tty; echo to-console >/dev/console; \
         mount | grep -q ' /dev/console ' && echo console-bound; read line; echo got:$line",
    );
    let berth = Berth::new();
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let out = berth.create(&b, &id, &["--console-socket", sock.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (name, master) = receive_master(&listener);
    assert_eq!(name, "/dev/ptmx");
    berth.ok(&["start", &id]);
    let text = read_until(&master, "console-bound");
    assert!(text.contains("31 97"), "consoleSize not applied: {text:?}");
    assert!(text.contains("/dev/pts/0"), "tty: {text:?}");
    assert!(text.contains("stdin-is-tty"), "{text:?}");
    assert!(
        text.contains("to-console"),
        "/dev/console is not the pty: {text:?}"
    );
    let mut m = std::fs::File::from(master.try_clone().unwrap());
    m.write_all(b"hello\n").unwrap();
    let text = read_until(&master, "got:hello");
    assert!(text.contains("got:hello"), "{text:?}");
    berth.wait_status(&id, "stopped");
    berth.ok(&["delete", &id]);
}

#[test]
fn console_socket_that_is_missing_or_not_listening_fails_create_cleanly() {
    let id = unique("tty-nosock");
    let b = terminal_bundle(&id, "true");
    let berth = Berth::new();
    let missing = b.dir.join("nope.sock");
    let out = berth.create(&b, &id, &["--console-socket", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("console socket") && err.contains("nope.sock"),
        "{err}"
    );
    let cg: Vec<_> = own_cgroup_dirs()
        .iter()
        .map(|d| d.join(&b.cgroup))
        .collect();
    assert_gone(&berth, &id, &cg, None);

    // A plain file where the socket should be: connect is refused.
    let not_sock = b.dir.join("file.sock");
    std::fs::write(&not_sock, "").unwrap();
    let out = berth.create(&b, &id, &["--console-socket", not_sock.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("file.sock"), "{err}");
    assert_gone(&berth, &id, &cg, None);
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let id = unique("tty-none");
    let b = terminal_bundle(&id, "true");
    let berth = Berth::new();
    let out = berth.create(&b, &id, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--console-socket"), "{err}");
    assert!(!Path::new(&berth.root.join(&id)).exists());
}
