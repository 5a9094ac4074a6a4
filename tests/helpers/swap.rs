//! A tiny static program for tests: the attacker of a mount race. Swaps two names (a directory and a symlink, say)
//! with renameat2(RENAME_EXCHANGE) in a tight loop, for at most SECONDS. Built by the tests with plain rustc
//! (tests/common), never part of berth.
//!
//! Usage: swap A B SECONDS
//! Prints `swaps=N` when done.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint};
use std::time::{Duration, Instant};

extern "C" {
    fn renameat2(
        olddirfd: c_int,
        oldpath: *const c_char,
        newdirfd: c_int,
        newpath: *const c_char,
        flags: c_uint,
    ) -> c_int;
}

const AT_FDCWD: c_int = -100;
const RENAME_EXCHANGE: c_uint = 2;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(args.len(), 3, "usage: swap A B SECONDS");
    let (a, b) = (
        CString::new(args[0].as_str()).unwrap(),
        CString::new(args[1].as_str()).unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(args[2].parse().expect("seconds"));
    let mut swaps: u64 = 0;
    while Instant::now() < until {
        for _ in 0..1000 {
            // SAFETY: two valid NUL-terminated paths that outlive the call.
            if unsafe { renameat2(AT_FDCWD, a.as_ptr(), AT_FDCWD, b.as_ptr(), RENAME_EXCHANGE) } == 0 {
                swaps += 1;
            }
        }
    }
    println!("swaps={swaps}");
}
