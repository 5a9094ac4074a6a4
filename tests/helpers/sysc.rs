//! A tiny static program for tests: makes raw syscalls and prints what the kernel (or a seccomp filter) answered.
//! Built by the tests with plain rustc (tests/common), never part of berth.
//!
//! Usage: sysc [-32] NR [ARG...] [-- [-32] NR [ARG...]]...
//!   -32    use the i386 ABI (int 0x80) instead of the native syscall instruction
//!   ARG    a number (decimal or 0x hex) or s:TEXT (a pointer to TEXT, NUL-terminated)
//! Prints one line per call: `ret=N` or `errno=N`.

use std::arch::asm;
use std::io::Write;

fn syscall64(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: a raw syscall; the caller chooses its arguments (that is the point of this program).
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret, in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
             in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

fn syscall32(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i32;
    // SAFETY: the i386 syscall gate; pointers passed must lie below 4 GiB to mean anything (numbers are fine).
    unsafe {
        asm!("push rbx", "mov ebx, {a0:e}", "int 0x80", "pop rbx", a0 = in(reg) a[0] as u32,
             inlateout("eax") nr as u32 => ret, in("ecx") a[1] as u32, in("edx") a[2] as u32,
             in("esi") a[3] as u32, in("edi") a[4] as u32);
    }
    ret as i64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut keep: Vec<Vec<u8>> = Vec::new();
    let mut out = std::io::stdout();
    for call in args.split(|a| a == "--") {
        let (compat, call) = match call.first().map(|s| s.as_str()) {
            Some("-32") => (true, &call[1..]),
            _ => (false, call),
        };
        let mut nums = [0u64; 7];
        for (i, a) in call.iter().enumerate().take(7) {
            nums[i] = if let Some(text) = a.strip_prefix("s:") {
                let mut bytes = text.as_bytes().to_vec();
                bytes.push(0);
                let p = bytes.as_ptr() as u64;
                keep.push(bytes);
                p
            } else if let Some(hex) = a.strip_prefix("0x") {
                u64::from_str_radix(hex, 16).expect("hex number")
            } else {
                a.parse::<i64>().map(|v| v as u64).or_else(|_| a.parse::<u64>()).expect("number")
            };
        }
        let argv = [nums[1], nums[2], nums[3], nums[4], nums[5], nums[6]];
        let ret = if compat { syscall32(nums[0], argv) } else { syscall64(nums[0], argv) };
        if (-4095..0).contains(&ret) {
            writeln!(out, "errno={}", -ret).unwrap();
        } else {
            writeln!(out, "ret={ret}").unwrap();
        }
        out.flush().unwrap();
    }
}
