//! Terminals over --console-socket, as containerd's shim and conmon use them: the test plays the client, receives
//! the pty master (runc's message: one SCM_RIGHTS fd, the name "/dev/ptmx" as data), talks to the container through
//! it, and checks consoleSize, /dev/console and the controlling terminal.
//!
//! And terminals as a person uses them: berth in the foreground (`run`, `exec -t`) on a real pty the test types
//! into, relaying a pty of its own to the container as runc does, with the terminal's mode restored afterwards; and
//! the same commands with stdin a pipe or /dev/null, or without any terminal.

mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tty::{flags, is_raw, read_until, receive_master, wait_exit, TestPty};
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

fn foreground(berth: &Berth, args: &[&str]) -> Command {
    let mut c = berth.cmd();
    c.args(args);
    c
}

fn run_cmd(berth: &Berth, b: &Bundle, id: &str) -> Command {
    foreground(berth, &["run", "--bundle", b.dir.to_str().unwrap(), id])
}

/// The first thing a person types: `berth run` of a terminal config in an interactive terminal. berth gives the
/// container a pty of its own (its controlling terminal, /dev/pts/0 of its devpts, owned by the user and the tty
/// group), sized as berth's terminal and resized with it; what is typed reaches it; the exit code comes back; and
/// the terminal is raw while berth relays and as before once it is done.
#[test]
fn run_in_a_terminal_relays_its_own_pty_and_restores_the_terminal() {
    let id = unique("tty-run");
    let mut b = Bundle::new(&id);
    b.sh(
        "tty; stat -c owner=%u:%g $(tty); stty size; [ -t 0 ] && echo stdin-is-tty; \
         echo ready; read line; stty size; echo got:$line; exit 3",
    )
    .edit(|c| c["process"]["terminal"] = json!(true));
    let berth = Berth::new();
    let pty = TestPty::new(31, 97);
    let before = pty.mode();
    assert!(!is_raw(&before));
    let mut child = pty.spawn(&run_cmd(&berth, &b, &id));
    let text = read_until(&pty.master, "ready");
    assert!(text.contains("/dev/pts/0"), "tty: {text:?}");
    assert!(text.contains("owner=0:5"), "pty owner: {text:?}");
    assert!(text.contains("31 97"), "window size not copied: {text:?}");
    assert!(text.contains("stdin-is-tty"), "{text:?}");
    assert!(
        is_raw(&pty.mode()),
        "berth's terminal is not raw while it relays"
    );
    pty.resize(40, 120);
    pty.type_in("hello\n");
    let text = read_until(&pty.master, "got:hello");
    assert!(text.contains("40 120"), "SIGWINCH not followed: {text:?}");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 3);
    assert_eq!(
        flags(&pty.mode()),
        flags(&before),
        "terminal mode not restored"
    );
    assert!(
        !berth.root.join(&id).exists(),
        "run left the container behind"
    );
}

/// A signal to berth goes to the container; the container's exit ends berth, the terminal restored.
#[test]
fn run_in_a_terminal_restores_it_when_a_signal_ends_the_container() {
    let id = unique("tty-sig");
    let mut b = Bundle::new(&id);
    b.sh("trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.1; done")
        .edit(|c| c["process"]["terminal"] = json!(true));
    let berth = Berth::new();
    let pty = TestPty::new(24, 80);
    let before = pty.mode();
    let mut child = pty.spawn(&run_cmd(&berth, &b, &id));
    read_until(&pty.master, "ready");
    assert!(is_raw(&pty.mode()));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    read_until(&pty.master, "term");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 7);
    assert_eq!(
        flags(&pty.mode()),
        flags(&before),
        "terminal mode not restored"
    );
}

/// runc's "stdin not a tty": stdin /dev/null with the terminal on stdout/stderr, or reachable only as the
/// controlling terminal (/dev/tty). The container still gets a pty sized as that terminal; EOF on stdin ends
/// nothing (runc sends nothing either); the container's exit does.
#[test]
fn run_with_stdin_dev_null_uses_the_terminal_it_finds() {
    let id = unique("tty-null");
    let mut b = Bundle::new(&id);
    b.sh("tty; stty size; echo done")
        .edit(|c| c["process"]["terminal"] = json!(true));
    let berth = Berth::new();
    let pty = TestPty::new(33, 101);
    let before = pty.mode();
    let mut child = run_cmd(&berth, &b, &id)
        .stdin(Stdio::null())
        .stdout(pty.stdio())
        .stderr(pty.stdio())
        .spawn()
        .unwrap();
    let text = read_until(&pty.master, "done");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)),
        0,
        "{text:?}"
    );
    assert!(
        text.contains("/dev/pts/0") && text.contains("33 101"),
        "{text:?}"
    );
    assert_eq!(flags(&pty.mode()), flags(&before));

    // No terminal among stdin, stdout, stderr: the controlling terminal is used.
    let out = b.dir.join("out.txt");
    let cmd = run_cmd(&berth, &b, &id);
    let line = format!(
        "exec {} {} </dev/null >{} 2>&1",
        cmd.get_program().to_str().unwrap(),
        cmd.get_args()
            .map(|a| a.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" "),
        out.display()
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &line]);
    let mut child = pty.spawn(&sh);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("/dev/pts/0") && text.contains("33 101"),
        "{text:?}"
    );
    assert_eq!(flags(&pty.mode()), flags(&before));
}

/// Without any terminal (stdio pipes, no controlling terminal) a terminal config cannot run in the foreground:
/// runc's error, exit 1, nothing left behind. `run -d` without a console socket: runc's error too.
#[test]
fn run_with_a_terminal_config_and_no_terminal_fails_cleanly() {
    let id = unique("tty-noterm");
    let mut b = Bundle::new(&id);
    b.sh("echo should-not-run")
        .edit(|c| c["process"]["terminal"] = json!(true));
    let berth = Berth::new();
    let cmd = run_cmd(&berth, &b, &id);
    // setsid --wait: a new session without a controlling terminal, whatever the test runner has.
    let out = Command::new("setsid")
        .arg("--wait")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let (code, stdout, err) = captured(out);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&id) && err.contains("open /dev/tty: no such device or address"),
        "{err}"
    );
    assert!(!stdout.contains("should-not-run"));
    let cg: Vec<_> = own_cgroup_dirs()
        .iter()
        .map(|d| d.join(&b.cgroup))
        .collect();
    assert_gone(&berth, &id, &cg, None);

    let err = berth.fails(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("cannot allocate tty if berth will detach without setting console socket"),
        "{err}"
    );
    assert_gone(&berth, &id, &cg, None);
}

/// `exec -t` in an interactive terminal: a pty of the container's devpts owned by the exec's user, sized as berth's
/// terminal, typed into, its exit code returned, the terminal restored.
#[test]
fn exec_t_in_a_terminal_relays_a_pty() {
    let id = unique("tty-exec");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    let berth = Berth::new();
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    let pty = TestPty::new(29, 91);
    let before = pty.mode();
    let exec = foreground(
        &berth,
        &[
            "exec",
            "-t",
            "--user",
            "1000:100",
            &id,
            "sh",
            "-c",
            "tty; stat -c owner=%u:%g $(tty); stty size; echo ready; read l; echo got:$l; exit 5",
        ],
    );
    let mut child = pty.spawn(&exec);
    let text = read_until(&pty.master, "ready");
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    // runc's "tty owner": the user's uid, devpts' tty group (not the user's gid).
    assert!(text.contains("owner=1000:5"), "{text:?}");
    assert!(text.contains("29 91"), "{text:?}");
    assert!(is_raw(&pty.mode()));
    pty.type_in("typed\n");
    read_until(&pty.master, "got:typed");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 5);
    assert_eq!(
        flags(&pty.mode()),
        flags(&before),
        "terminal mode not restored"
    );
    berth.ok(&["delete", "--force", &id]);
}

/// exec takes `terminal` from -t or --process only: in a container made from a terminal config, `exec` without -t
/// has no terminal (stdin a pipe works), `exec -d` needs no console socket; `exec -t -d` without one, or a console
/// socket without -d, is refused with runc's words.
#[test]
fn exec_without_t_in_a_terminal_container_has_no_terminal() {
    let id = unique("tty-exec-cfg");
    let b = terminal_bundle(&id, "sleep 1000");
    let berth = Berth::new();
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let out = berth.create(&b, &id, &["--console-socket", sock.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, _master) = receive_master(&listener);
    berth.ok(&["start", &id]);

    let mut child = berth
        .cmd()
        .args(["exec", &id, "sh", "-c", "tty; read l; echo got:$l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    let (code, stdout, err) = captured(child.wait_with_output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, "not a tty\ngot:piped\n", "{err}");

    berth.ok(&["exec", "-d", &id, "true"]);
    let err = berth.fails(&["exec", "-t", "-d", &id, "true"]);
    assert!(
        err.contains("cannot allocate tty if berth will detach without setting console socket"),
        "{err}"
    );
    let err = berth.fails(&[
        "exec",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "true",
    ]);
    assert!(
        err.contains("cannot use console socket if berth will not detach or allocate tty"),
        "{err}"
    );
    berth.ok(&["delete", "--force", &id]);
}
