//! The last execve goes through a sealed stub, so that no container program ever runs while /proc/self/exe is
//! berth's binary (CVE-2019-5736).
//!
//! berth's init and `berth exec` child are forks of berth: until their final execve, /proc/self/exe is berth's
//! binary (a read-only view of it: commands::sealed). The execve itself could hand it to the container: a program
//! that is a script starting `#!/proc/self/exe` makes the kernel run *berth's binary* inside the container,
//! dumpable again. The read-only view keeps the host's file safe, but berth would still run container-chosen
//! arguments inside the container. So the final execve runs a ~170-byte static program from a sealed memfd, which
//! execs the container program: at that execve /proc/self/exe is the memfd, which nothing can write (F_SEAL_WRITE),
//! so `#!/proc/self/exe` only runs the stub again (which refuses its arguments and exits 127).
//!
//! The stub's argv is `[report fd, program path, program argv...]`; it sets FD_CLOEXEC on the report fd (so `start`
//! or the exec parent still sees EOF the moment the program runs) and execs; if that fails it writes
//! [`FAILURE_MAGIC`], the errno (u32, little-endian) and the path to the report fd in one writev, and exits 127.
//!
//! Not used (the program is exec'd directly, as before) where the stub cannot stand in for berth transparently:
//! an AppArmor profile or SELinux label (their exec transition would apply to the stub, not the program), a seccomp
//! profile that would not let the stub's calls through, or a kernel that refuses to exec a memfd.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// The stub's machine code (x86_64), assembled from scripts/exec-stub.S by scripts/gen-exec-stub.sh.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
const CODE: [u8; 172] = [
    0x48, 0x83, 0x3c, 0x24, 0x03, 0x0f, 0x82, 0x95, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x74, 0x24, 0x08,
    0x80, 0x3e, 0x00, 0x0f, 0x84, 0x87, 0x00, 0x00, 0x00, 0x31, 0xdb, 0x0f, 0xb6, 0x06, 0x85, 0xc0,
    0x74, 0x12, 0x83, 0xe8, 0x30, 0x83, 0xf8, 0x09, 0x77, 0x76, 0x6b, 0xdb, 0x0a, 0x01, 0xc3, 0x48,
    0xff, 0xc6, 0xeb, 0xe7, 0x89, 0xdf, 0xbe, 0x02, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00, 0x00, 0x00,
    0xb8, 0x48, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x85, 0xc0, 0x75, 0x1a, 0x48, 0x8b, 0x7c, 0x24,
    0x10, 0x48, 0x8d, 0x74, 0x24, 0x18, 0x48, 0x8b, 0x04, 0x24, 0x48, 0x8d, 0x54, 0xc4, 0x10, 0xb8,
    0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xf7, 0xd8, 0x48, 0xc1, 0xe0, 0x20, 0xb9, 0x42, 0x58, 0x45,
    0x43, 0x48, 0x09, 0xc8, 0x50, 0x48, 0x8b, 0x74, 0x24, 0x18, 0x31, 0xd2, 0x80, 0x3c, 0x16, 0x00,
    0x74, 0x05, 0x48, 0xff, 0xc2, 0xeb, 0xf5, 0x48, 0x89, 0xe1, 0x52, 0x56, 0x6a, 0x08, 0x51, 0x89,
    0xdf, 0x48, 0x89, 0xe6, 0xba, 0x02, 0x00, 0x00, 0x00, 0xb8, 0x14, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0xbf, 0x7f, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
];

/// What the stub writes to the report fd when the program's execve fails, followed by the errno.
pub const FAILURE_MAGIC: &[u8; 4] = b"BXEC";

/// Where the stub is loaded (above the usual vm.mmap_min_addr of 64 KiB).
const LOAD_ADDRESS: u64 = 0x10000;
const ELF_HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;

/// A minimal static ELF64 executable: header, one PT_LOAD (read + execute) mapping the whole file, then the code.
#[cfg(target_arch = "x86_64")]
pub fn elf_image() -> Vec<u8> {
    const EM_X86_64: u16 = 62;
    let code_offset = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE;
    let size = (code_offset + CODE.len()) as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI, padding.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&EM_X86_64.to_le_bytes()); // e_machine
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(LOAD_ADDRESS + code_offset as u64).to_le_bytes()); // e_entry
    elf.extend_from_slice(&(ELF_HEADER_SIZE as u64).to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&(ELF_HEADER_SIZE as u16).to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&(PROGRAM_HEADER_SIZE as u16).to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
                                    // The program header: PT_LOAD, PF_R | PF_X, the whole file at LOAD_ADDRESS.
    elf.extend_from_slice(&1u32.to_le_bytes()); // p_type
    elf.extend_from_slice(&5u32.to_le_bytes()); // p_flags
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    elf.extend_from_slice(&CODE);
    elf
}

/// The error of a failed program execve, when `report` is the stub's failure record (magic, errno, path).
pub fn decode_failure(report: &[u8]) -> Option<String> {
    let rest = report.strip_prefix(FAILURE_MAGIC)?;
    let errno = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
    let path = String::from_utf8_lossy(&rest[4..]);
    Some(super::exec::exec_failure(
        &path,
        Errno::from_raw(errno as i32),
    ))
}

/// The sealed memfd holding the stub, made while berth can still make it (before seccomp and the uid switch).
pub struct Stub {
    memfd: OwnedFd,
}

impl Stub {
    /// The stub, or None where it cannot be used (no x86_64, or the kernel refuses a sealed executable memfd).
    pub fn new() -> Option<Stub> {
        #[cfg(target_arch = "x86_64")]
        {
            let memfd = crate::sys::memfd_executable(c"berth-exec-stub").ok()?;
            let mut file = std::fs::File::from(memfd);
            std::io::Write::write_all(&mut file, &elf_image()).ok()?;
            let memfd = OwnedFd::from(file);
            crate::sys::seal_memfd(memfd.as_fd()).ok()?;
            Some(Stub { memfd })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The stub for `process`, where it fits (see [`Stub::fits`]) and the kernel lets berth make it. Called while
    /// berth may still create it: before seccomp and the uid switch.
    pub fn for_process(
        process: &crate::config::Process,
        seccomp: Option<&super::seccomp::Filter>,
    ) -> Option<Stub> {
        Stub::fits(
            process.apparmor_profile.as_deref(),
            process.selinux_label.as_deref(),
            seccomp,
        )
        .then(Stub::new)
        .flatten()
    }

    /// As [`Stub::for_process`], made where `seccomp` is already loaded: only if it also lets the calls that make
    /// the stub through (memfd_create, write, fcntl(F_ADD_SEALS)).
    pub fn for_process_under_filter(
        process: &crate::config::Process,
        seccomp: Option<&super::seccomp::Filter>,
    ) -> Option<Stub> {
        if seccomp.is_some_and(|f| !Stub::can_be_made_under(f)) {
            return None;
        }
        Stub::for_process(process, seccomp)
    }

    fn can_be_made_under(f: &super::seccomp::Filter) -> bool {
        const MFD_EXEC: u64 = 0x10;
        let flags = (libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as u64;
        f.lets_through("memfd_create", [0, flags | MFD_EXEC, 0, 0, 0, 0])
            && f.lets_through("memfd_create", [0, flags, 0, 0, 0, 0])
            && f.lets_through("write", [0, 0, 0, 0, 0, 0])
            && f.lets_through("fcntl", [0, libc::F_ADD_SEALS as u64, 0, 0, 0, 0])
    }

    /// Whether the stub can run under the process's settings: no LSM exec transition, and a seccomp filter that
    /// lets the stub's execveat, fcntl(F_SETFD) and writev through (its execve is the program's own, needed either
    /// way).
    pub fn fits(
        apparmor_profile: Option<&str>,
        selinux_label: Option<&str>,
        seccomp: Option<&super::seccomp::Filter>,
    ) -> bool {
        let lsm = apparmor_profile.is_some_and(|p| !p.is_empty())
            || selinux_label.is_some_and(|l| !l.is_empty());
        let filtered_out = seccomp.is_some_and(|f| {
            !f.lets_through("execveat", [0, 0, 0, 0, libc::AT_EMPTY_PATH as u64, 0])
                || !f.lets_through(
                    "fcntl",
                    [0, libc::F_SETFD as u64, libc::FD_CLOEXEC as u64, 0, 0, 0],
                )
                || !f.lets_through("writev", [0, 0, 2, 0, 0, 0])
        });
        !lsm && !filtered_out
    }

    /// Execs `path` with `argv`/`envp` through the stub; `report_fd` must be close-on-exec and is what the caller
    /// watches for EOF. Returns only when even the stub could not be exec'd (then nothing has changed and the caller
    /// execs the program directly), with the reason.
    pub fn exec(&self, report_fd: RawFd, path: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
        let fd_arg = CString::new(report_fd.to_string()).expect("digits only");
        let mut stub_argv: Vec<&CStr> = Vec::with_capacity(argv.len() + 2);
        stub_argv.push(&fd_arg);
        stub_argv.push(path);
        stub_argv.extend(argv.iter().map(|a| a.as_c_str()));
        let envp: Vec<&CStr> = envp.iter().map(|e| e.as_c_str()).collect();
        // The report fd must survive into the stub, which closes it on its own execve.
        if let Err(e) = crate::sys::clear_cloexec(report_fd) {
            return e;
        }
        let err = crate::sys::execveat_fd(self.memfd.as_fd(), &stub_argv, &envp);
        if let Err(e) = crate::sys::set_cloexec(report_fd) {
            return e;
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_an_elf_executable_whose_entry_is_the_code() {
        let elf = elf_image();
        assert_eq!(&elf[..4], b"\x7fELF");
        let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
        let code_at = (entry - LOAD_ADDRESS) as usize;
        assert_eq!(&elf[code_at..], &CODE);
        let filesz = u64::from_le_bytes(elf[64 + 32..64 + 40].try_into().unwrap());
        assert_eq!(filesz as usize, elf.len());
    }

    #[test]
    fn failure_records_decode_and_other_reports_do_not() {
        let mut rec = FAILURE_MAGIC.to_vec();
        rec.extend_from_slice(&(libc::ENOEXEC as u32).to_le_bytes());
        rec.extend_from_slice(b"/bin/x");
        assert_eq!(
            decode_failure(&rec).as_deref(),
            Some("exec /bin/x: exec format error")
        );
        assert_eq!(decode_failure(b"exec /x: not found"), None);
        assert_eq!(decode_failure(&rec[..7]), None);
        assert_eq!(decode_failure(b""), None);
    }

    fn filter(json: serde_json::Value) -> crate::process::seccomp::Filter {
        crate::config::seccomp::Seccomp::from_oci(&serde_json::from_value(json).unwrap()).unwrap()
    }

    #[test]
    fn the_stub_is_left_out_where_it_would_not_run_as_the_program_would() {
        assert!(Stub::fits(None, None, None));
        assert!(Stub::fits(Some(""), Some(""), None));
        assert!(!Stub::fits(Some("docker-default"), None, None));
        assert!(!Stub::fits(
            None,
            Some("system_u:system_r:container_t:s0"),
            None
        ));
        let allow_list = |names: &[&str]| {
            filter(serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
            }))
        };
        let all = allow_list(&["execve", "execveat", "fcntl", "writev", "exit_group"]);
        assert!(Stub::fits(None, None, Some(&all)));
        for missing in ["execveat", "fcntl", "writev"] {
            let names: Vec<&str> = ["execve", "execveat", "fcntl", "writev"]
                .into_iter()
                .filter(|n| *n != missing)
                .collect();
            assert!(
                !Stub::fits(None, None, Some(&allow_list(&names))),
                "{missing}"
            );
        }
        // A rule on the fcntl command: F_SETFD allowed, or not.
        let only_getfd = filter(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["fcntl"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]}]
        }));
        assert!(!Stub::fits(None, None, Some(&only_getfd)));
        let logged = filter(serde_json::json!({
            "defaultAction": "SCMP_ACT_LOG", "syscalls": []
        }));
        assert!(Stub::fits(None, None, Some(&logged)));
        // Made under the filter (the init, at start): the calls that make it must pass too.
        let making = allow_list(&["memfd_create", "write", "fcntl"]);
        assert!(Stub::can_be_made_under(&making));
        for missing in ["memfd_create", "write", "fcntl"] {
            let names: Vec<&str> = ["memfd_create", "write", "fcntl"]
                .into_iter()
                .filter(|n| *n != missing)
                .collect();
            assert!(!Stub::can_be_made_under(&allow_list(&names)), "{missing}");
        }
    }

    /// The code bytes are what scripts/exec-stub.S assembles to (checked where binutils is installed).
    #[test]
    fn code_matches_its_assembly_source() {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/exec-stub.S");
        let dir = std::env::temp_dir().join(format!("berth-stub-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let obj = dir.join("stub.o");
        let bin = dir.join("stub.bin");
        let assembled = std::process::Command::new("as")
            .args(["--64", "-o"])
            .arg(&obj)
            .arg(src)
            .status();
        let Ok(st) = assembled else {
            eprintln!("no assembler here: skipped");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        };
        assert!(st.success());
        let st = std::process::Command::new("objcopy")
            .args(["-O", "binary", "-j", ".text"])
            .arg(&obj)
            .arg(&bin)
            .status()
            .unwrap();
        assert!(st.success());
        let bytes = std::fs::read(&bin).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(bytes, CODE, "regenerate with scripts/gen-exec-stub.sh");
    }
}
