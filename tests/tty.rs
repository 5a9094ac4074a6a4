//! Terminals over --console-socket, as containerd's shim and conmon use them: the test plays the client, receives
//! the pty master (runc's message: one SCM_RIGHTS fd, the name "/dev/ptmx" as data), talks to the container through
//! it, and checks consoleSize, /dev/console and the controlling terminal.

mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::tty::{read_until, receive_master};
use common::*;
use serde_json::json;
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
    assert!(
        err.contains("cannot allocate tty if berth will detach without setting console socket"),
        "{err}"
    );
    assert!(!Path::new(&berth.root.join(&id)).exists());
}
