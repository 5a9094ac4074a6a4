//! Device access rules: validation of `linux.resources.devices`, the rules every container gets, the v1
//! `devices.allow`/`devices.deny` lines, and the eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) that enforces the same
//! rules on cgroup v2.
//!
//! The semantics are the v1 controller's, which the spec follows: the rules apply in order on top of "deny
//! everything", and for a given access the last rule that matches decides.

/// One device rule, checked at load (`config`).
pub use crate::config::DeviceRule as Rule;
pub use crate::config::{ACC_MKNOD, ACC_READ, ACC_WRITE};
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

impl Rule {
    /// The line for devices.allow / devices.deny: "c 1:3 rwm", or "a" for every device.
    pub fn v1_line(&self) -> String {
        if self.kind == 'a' {
            return "a".into();
        }
        let n = |v: Option<u32>| v.map_or("*".to_string(), |n| n.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{} {}:{} {acc}", self.kind, n(self.major), n(self.minor))
    }
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0xf),
            off,
            imm,
        }
    }

    /// The 8 bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: access_type is (access << 16) | type.
const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;

/// Compiles rules into a BPF_PROG_TYPE_CGROUP_DEVICE program: returns 1 to allow the access, 0 to refuse it.
///
/// Registers after the prologue: r2 = device type, r3 = requested access bits, r4 = major, r5 = minor. The rules
/// are tested last first, and the first match decides (the last matching rule wins, as on v1); no match is a
/// refusal. A rule matches when the type and numbers match and it covers every requested access bit; an "a" rule
/// matches everything (on v1, "a" resets the whole list whatever its access says).
pub fn bpf_program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),
        Insn::new(ALU32_AND_K, 2, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),
        Insn::new(ALU32_RSH_K, 3, 0, 0, 16),
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        if rule.kind == 'a' {
            // Matches everything: what follows could never run, and the verifier refuses unreachable code.
            p.push(Insn::new(ALU32_MOV_K, 0, 0, 0, i32::from(rule.allow)));
            p.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
            return p;
        }
        // Each check jumps to the end of this rule's block when it does not match; offsets are filled in below.
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new();
        {
            let t = if rule.kind == 'b' {
                DEVCG_DEV_BLOCK
            } else {
                DEVCG_DEV_CHAR
            };
            jumps.push(block.len());
            block.push(Insn::new(JMP_JNE_K, 2, 0, 0, t));
            if rule.access & ACC_ALL != ACC_ALL {
                // (requested & rule) != requested → some requested bit is not covered.
                block.push(Insn::new(ALU32_MOV_X, 1, 3, 0, 0));
                block.push(Insn::new(ALU32_AND_K, 1, 0, 0, rule.access as i32));
                jumps.push(block.len());
                block.push(Insn::new(JMP_JNE_X, 1, 3, 0, 0));
            }
            if let Some(major) = rule.major {
                jumps.push(block.len());
                block.push(Insn::new(JMP_JNE_K, 4, 0, 0, major as i32));
            }
            if let Some(minor) = rule.minor {
                jumps.push(block.len());
                block.push(Insn::new(JMP_JNE_K, 5, 0, 0, minor as i32));
            }
        }
        block.push(Insn::new(ALU32_MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for j in jumps {
            block[j].off = (len - j - 1) as i16;
        }
        p.extend(block);
    }
    p.push(Insn::new(ALU32_MOV_K, 0, 0, 0, 0));
    p.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Runs a program from [`bpf_program`] on one access, as the kernel would: the test oracle for the generator.
#[cfg(test)]
pub fn interpret(prog: &[Insn], kind: char, major: u32, minor: u32, access: u32) -> u32 {
    let t = if kind == 'b' {
        DEVCG_DEV_BLOCK
    } else {
        DEVCG_DEV_CHAR
    } as u32;
    let ctx = [(access << 16) | t, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_MEM_W => r[dst] = ctx[i.off as usize / 4] as u64,
            ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            ALU32_MOV_K => r[dst] = i.imm as u32 as u64,
            ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
            JMP_JNE_K if r[dst] != i.imm as u32 as u64 => pc += i.off as usize,
            JMP_JNE_X if r[dst] != r[src] => pc += i.off as usize,
            JMP_JNE_K | JMP_JNE_X => {}
            JMP_EXIT => return r[0] as u32,
            other => panic!("unknown opcode {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{default_device_rules, parse_device_rules};
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

    fn rule(
        allow: bool,
        kind: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(kind));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    }

    fn container_rules(extra: Vec<LinuxDeviceCgroup>) -> Vec<Rule> {
        let mut all =
            parse_device_rules(&[rule(false, LinuxDeviceType::A, None, None, "rwm")]).unwrap();
        all.extend(default_device_rules());
        all.extend(parse_device_rules(&extra).unwrap());
        all
    }

    #[test]
    fn v1_lines() {
        let r = parse_device_rules(&[
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(false, LinuxDeviceType::B, Some(8), None, "w"),
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::U, Some(4), Some(1), "mr"),
            rule(false, LinuxDeviceType::C, Some(1), Some(11), "rwa"),
        ])
        .unwrap();
        let lines: Vec<String> = r.iter().map(Rule::v1_line).collect();
        assert_eq!(
            lines,
            ["c 1:3 rwm", "b 8:* w", "a", "c 4:1 rm", "c 1:11 rw"]
        );
    }

    #[test]
    fn program_allows_defaults_and_denies_the_rest() {
        let p = bpf_program(&container_rules(vec![]));
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(interpret(&p, 'c', 1, 3, rw), 1, "/dev/null");
        assert_eq!(interpret(&p, 'c', 136, 7, rw), 1, "a pty");
        assert_eq!(interpret(&p, 'c', 1, 1, ACC_READ), 0, "/dev/mem");
        assert_eq!(interpret(&p, 'b', 8, 0, ACC_READ), 0, "a disk");
        assert_eq!(interpret(&p, 'b', 8, 0, ACC_MKNOD), 1, "mknod of anything");
        assert_eq!(interpret(&p, 'b', 8, 0, ACC_MKNOD | ACC_READ), 0);
    }

    #[test]
    fn later_rules_win() {
        // Deny /dev/null after the defaults allowed it.
        let p = bpf_program(&container_rules(vec![rule(
            false,
            LinuxDeviceType::C,
            Some(1),
            Some(3),
            "rwm",
        )]));
        assert_eq!(interpret(&p, 'c', 1, 3, ACC_READ), 0);
        assert_eq!(interpret(&p, 'c', 1, 5, ACC_READ), 1);
        // Allow everything at the end: a later "a" rule resets the list.
        let p = bpf_program(&container_rules(vec![rule(
            true,
            LinuxDeviceType::A,
            None,
            None,
            "rwm",
        )]));
        assert_eq!(interpret(&p, 'b', 8, 0, ACC_READ | ACC_WRITE), 1);
    }

    #[test]
    fn partial_access_rules() {
        let p = bpf_program(&container_rules(vec![rule(
            true,
            LinuxDeviceType::C,
            Some(10),
            Some(229),
            "r",
        )]));
        assert_eq!(interpret(&p, 'c', 10, 229, ACC_READ), 1);
        assert_eq!(interpret(&p, 'c', 10, 229, ACC_READ | ACC_WRITE), 0);
        assert_eq!(interpret(&p, 'c', 10, 229, ACC_WRITE), 0);
        // Block and char with the same numbers are different devices.
        assert_eq!(interpret(&p, 'b', 10, 229, ACC_READ), 0);
    }

    /// The kernel's verifier refuses programs with unreachable instructions.
    fn assert_all_reachable(p: &[Insn]) {
        let mut seen = vec![false; p.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if pc >= p.len() || seen[pc] {
                continue;
            }
            seen[pc] = true;
            match p[pc].code {
                JMP_EXIT => {}
                JMP_JNE_K | JMP_JNE_X => {
                    todo.push(pc + 1);
                    todo.push(pc + 1 + p[pc].off as usize);
                }
                _ => todo.push(pc + 1),
            }
        }
        let dead: Vec<usize> = (0..p.len()).filter(|i| !seen[*i]).collect();
        assert!(dead.is_empty(), "unreachable instructions {dead:?}");
    }

    #[test]
    fn no_unreachable_code() {
        assert_all_reachable(&bpf_program(&container_rules(vec![])));
        assert_all_reachable(&bpf_program(
            &parse_device_rules(&[rule(false, LinuxDeviceType::A, None, None, "rwm")]).unwrap(),
        ));
        let only_a = bpf_program(&container_rules(vec![rule(
            true,
            LinuxDeviceType::A,
            None,
            None,
            "rwm",
        )]));
        assert_all_reachable(&only_a);
        assert_eq!(only_a.len(), 8, "prologue + allow-all");
        assert_all_reachable(&bpf_program(&[]));
    }

    #[test]
    fn jumps_stay_inside_the_program() {
        let p = bpf_program(&container_rules(vec![rule(
            true,
            LinuxDeviceType::B,
            Some(7),
            None,
            "rw",
        )]));
        for (i, insn) in p.iter().enumerate() {
            if insn.code == JMP_JNE_K || insn.code == JMP_JNE_X {
                let target = i + 1 + insn.off as usize;
                assert!(target < p.len(), "jump at {i} leaves the program");
                assert!(insn.off > 0);
            }
        }
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
    }
}
