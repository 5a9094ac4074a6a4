//! The console-socket side of a terminal: what containerd's shim and conmon do with the pty master berth sends.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

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
