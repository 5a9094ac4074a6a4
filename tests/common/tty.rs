//! The console-socket side of a terminal (what containerd's shim and conmon do with the pty master berth sends), and
//! a person at a terminal (a pty whose slave is berth's controlling terminal).

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{tcgetattr, LocalFlags, OutputFlags, Termios};

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
pub fn read_until(master: &OwnedFd, want: &str) -> String {
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

/// A pseudo-terminal the test types into, as a person at a terminal would: berth runs with the slave as its
/// terminal, the test holds the master (and keeps a slave open so that the terminal's mode can be read at the end).
pub struct TestPty {
    pub master: OwnedFd,
    slave: OwnedFd,
}

impl TestPty {
    pub fn new(rows: u16, cols: u16) -> TestPty {
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let p = nix::pty::openpty(Some(&ws), None).unwrap();
        TestPty {
            master: p.master,
            slave: p.slave,
        }
    }

    /// The slave, as a stdio of a child.
    pub fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().unwrap())
    }

    /// The slave's path (/dev/pts/N of the host).
    pub fn path(&self) -> PathBuf {
        std::fs::read_link(format!("/proc/self/fd/{}", self.slave.as_raw_fd())).unwrap()
    }

    /// `cmd` in a new session whose controlling terminal is the slave, which is also its stdin, stdout and stderr
    /// (`setsid --ctty`), as in an interactive shell.
    pub fn spawn(&self, cmd: &Command) -> Child {
        Command::new("setsid")
            .arg("--ctty")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(self.stdio())
            .stdout(self.stdio())
            .stderr(self.stdio())
            .spawn()
            .unwrap()
    }

    /// The terminal's mode now (termios calls on the master act on the pair's one terminal).
    pub fn mode(&self) -> Termios {
        tcgetattr(&self.master).unwrap()
    }

    /// Changes the window size as a terminal emulator does (the kernel sends SIGWINCH to its foreground group).
    pub fn resize(&self, rows: u16, cols: u16) {
        let st = Command::new("stty")
            .arg("-F")
            .arg(self.path())
            .args(["rows", &rows.to_string(), "cols", &cols.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "stty rows/cols");
    }

    /// Types `text` into the terminal.
    pub fn type_in(&self, text: &str) {
        let mut m = std::fs::File::from(self.master.try_clone().unwrap());
        m.write_all(text.as_bytes()).unwrap();
    }
}

/// The flags that raw mode changes, to compare a terminal's mode before and after.
pub fn flags(
    t: &Termios,
) -> (
    libc::tcflag_t,
    libc::tcflag_t,
    libc::tcflag_t,
    libc::tcflag_t,
) {
    (
        t.input_flags.bits(),
        t.output_flags.bits(),
        t.control_flags.bits(),
        t.local_flags.bits(),
    )
}

/// In raw mode as runc sets it: no line editing, echo or signals from keys, output still post-processed.
pub fn is_raw(t: &Termios) -> bool {
    !t.local_flags
        .intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG)
        && t.output_flags.contains(OutputFlags::OPOST)
}

/// Waits (bounded) for a child to exit; returns its exit code.
pub fn wait_exit(child: &mut Child, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or_else(|| panic!("killed: {st:?}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
