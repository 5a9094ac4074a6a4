//! berth's seccomp compiler checked against an independent one. seccompiler (firecracker's) can express a subset
//! of OCI profiles: one architecture (x86_64), one action for every matching rule, 64-bit argument comparisons. For
//! generated profiles in that subset both compilers build a program, and berth's BPF interpreter runs both on the
//! same calls: the answers must agree, except where berth deliberately follows runc (see [`expected`]).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde_json::{json, Value};

use super::compile::{self, Abi, Program, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, RET_ERRNO};
use crate::config::fuzz::Rng;

/// Values that make comparisons interesting: small, at the 32-bit edges, with a high word, or anything.
fn interesting(rng: &mut Rng) -> u64 {
    match rng.below(5) {
        0 => rng.below(8) as u64,
        1 => 0xffff_ffff - rng.below(2) as u64,
        2 => ((rng.below(3) as u64) << 32) | rng.below(4) as u64,
        3 => u64::MAX - rng.below(2) as u64,
        _ => rng.next(),
    }
}

/// One action in both vocabularies: the OCI name, its errnoRet, and seccompiler's.
#[derive(Clone)]
struct Act {
    oci: &'static str,
    errno: Option<u32>,
    theirs: SeccompAction,
}

fn action(rng: &mut Rng, allow_kill_thread: bool) -> Act {
    let data = rng.below(40) as u32 + 1;
    let choice = rng.below(if allow_kill_thread { 7 } else { 5 });
    match choice {
        0 => Act {
            oci: "SCMP_ACT_ALLOW",
            errno: None,
            theirs: SeccompAction::Allow,
        },
        1 => Act {
            oci: "SCMP_ACT_ERRNO",
            errno: Some(data),
            theirs: SeccompAction::Errno(data),
        },
        2 => Act {
            oci: "SCMP_ACT_KILL_PROCESS",
            errno: None,
            theirs: SeccompAction::KillProcess,
        },
        3 => Act {
            oci: "SCMP_ACT_TRAP",
            errno: None,
            theirs: SeccompAction::Trap,
        },
        4 => Act {
            oci: "SCMP_ACT_LOG",
            errno: None,
            theirs: SeccompAction::Log,
        },
        5 => Act {
            oci: "SCMP_ACT_KILL_THREAD",
            errno: None,
            theirs: SeccompAction::KillThread,
        },
        _ => Act {
            oci: "SCMP_ACT_TRACE",
            errno: Some(data),
            theirs: SeccompAction::Trace(data),
        },
    }
}

/// One argument comparison in both vocabularies.
fn condition(rng: &mut Rng, index: u8) -> (Value, SeccompCondition) {
    let value = interesting(rng);
    let (op, value_two, theirs, their_value) = match rng.below(7) {
        0 => ("SCMP_CMP_EQ", 0, SeccompCmpOp::Eq, value),
        1 => ("SCMP_CMP_NE", 0, SeccompCmpOp::Ne, value),
        2 => ("SCMP_CMP_LT", 0, SeccompCmpOp::Lt, value),
        3 => ("SCMP_CMP_LE", 0, SeccompCmpOp::Le, value),
        4 => ("SCMP_CMP_GT", 0, SeccompCmpOp::Gt, value),
        5 => ("SCMP_CMP_GE", 0, SeccompCmpOp::Ge, value),
        _ => {
            // OCI: value is the mask, valueTwo the datum (libseccomp's order); seccompiler: the mask in the op.
            let datum = value & interesting(rng);
            (
                "SCMP_CMP_MASKED_EQ",
                datum,
                SeccompCmpOp::MaskedEq(value),
                datum,
            )
        }
    };
    let oci = json!({"index": index, "value": value, "valueTwo": value_two, "op": op});
    let theirs = SeccompCondition::new(index, SeccompCmpArgLen::Qword, theirs, their_value)
        .expect("a valid condition");
    (oci, theirs)
}

const POOL: &[&str] = &[
    "read",
    "write",
    "openat",
    "mkdir",
    "ioctl",
    "mmap",
    "kill",
    "socket",
    "prctl",
    "getpid",
    "personality",
    "clone",
    "unshare",
    "mount",
    "setns",
    "bpf",
];

/// A generated profile: berth's compiled program, seccompiler's, and the values worth probing per argument.
struct Case {
    ours: Program,
    theirs: Program,
    default: u32,
    highest_named: u32,
    probes: Vec<u64>,
}

fn generate(rng: &mut Rng) -> Case {
    let default = action(rng, false);
    let matched = loop {
        let a = action(rng, true);
        if u32::from(a.theirs.clone()) != u32::from(default.theirs.clone()) {
            break a;
        }
    };
    let mut entries = Vec::new();
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut probes = vec![0, 1, u64::MAX];
    let count = 1 + rng.below(6);
    for _ in 0..count {
        let name = *rng.pick(POOL);
        let nr = Abi::X86_64.number(name).expect("in the x86_64 table") as i64;
        if rules.contains_key(&nr) {
            continue;
        }
        let base = json!({"names": [name], "action": matched.oci, "errnoRet": matched.errno});
        if rng.below(3) == 0 {
            entries.push(base);
            rules.insert(nr, Vec::new());
            continue;
        }
        let mut theirs = Vec::new();
        for _ in 0..1 + rng.below(3) {
            // Distinct argument indices within a rule: berth (as runc) splits a rule that compares one argument
            // twice into alternatives, which seccompiler cannot express.
            let mut indices: Vec<u8> = (0..6).collect();
            let mut args = Vec::new();
            let mut conds = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let index = indices.remove(rng.below(indices.len()));
                let (oci, cond) = condition(rng, index);
                let v = oci["value"].as_u64().unwrap();
                let two = oci["valueTwo"].as_u64().unwrap();
                probes.extend([v, v.wrapping_sub(1), v.wrapping_add(1), two, v ^ (1 << 32)]);
                args.push(oci);
                conds.push(cond);
            }
            let mut entry = base.clone();
            entry["args"] = Value::Array(args);
            entries.push(entry);
            theirs.push(SeccompRule::new(conds).expect("a rule with conditions"));
        }
        rules.insert(nr, theirs);
    }
    let highest_named = *rules.keys().max().expect("at least one syscall") as u32;
    let profile = json!({
        "defaultAction": default.oci,
        "defaultErrnoRet": default.errno,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": entries,
    });
    let ours = compile::compile(&serde_json::from_value(profile.clone()).unwrap())
        .unwrap_or_else(|e| panic!("berth refused {profile}: {e}"));
    let filter = SeccompFilter::new(
        rules,
        default.theirs.clone(),
        matched.theirs,
        TargetArch::x86_64,
    )
    .expect("seccompiler takes the profile");
    let program: BpfProgram = filter.try_into().expect("seccompiler compiles it");
    let theirs = Program {
        insns: program
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect(),
        flags: 0,
        notify: false,
    };
    Case {
        ours,
        theirs,
        default: default.theirs.into(),
        highest_named,
        probes,
    }
}

/// What berth must answer given seccompiler's answer: the same, except that a deny-by-default profile answers
/// syscalls numbered past every syscall it names with ENOSYS (runc's rule, so that programs fall back from
/// syscalls newer than the profile).
fn expected(case: &Case, nr: u32, theirs: u32) -> u32 {
    let allows_by_default = matches!(case.default, compile::RET_ALLOW | compile::RET_LOG);
    if nr > case.highest_named && !allows_by_default {
        RET_ERRNO | libc::ENOSYS as u32
    } else {
        theirs
    }
}

#[test]
fn berth_and_seccompiler_agree_on_generated_profiles() {
    let mut rng = Rng(0x5eed_bee7_0000_0001);
    let mut calls = 0u64;
    for case_no in 0..400 {
        let case = generate(&mut rng);
        let mut nrs: Vec<u32> = POOL
            .iter()
            .map(|n| Abi::X86_64.number(n).unwrap())
            .collect();
        nrs.extend([case.highest_named + 1, 999, 0x3fff_ffff]);
        for nr in nrs {
            for _ in 0..24 {
                let mut args = [0u64; 6];
                for a in &mut args {
                    *a = if rng.below(4) == 0 {
                        interesting(&mut rng)
                    } else {
                        *rng.pick(&case.probes)
                    };
                }
                let theirs = case
                    .theirs
                    .evaluate(AUDIT_ARCH_X86_64, nr, args)
                    .expect("seccompiler's program uses only classic BPF the interpreter runs");
                let ours = case
                    .ours
                    .evaluate(AUDIT_ARCH_X86_64, nr, args)
                    .expect("berth's program runs to a return");
                assert_eq!(
                    ours,
                    expected(&case, nr, theirs),
                    "case {case_no}, nr {nr}, args {args:x?}"
                );
                calls += 1;
            }
        }
        // An architecture the profile does not list: both kill the process.
        let z = [0; 6];
        assert_eq!(
            case.ours.evaluate(AUDIT_ARCH_I386, 0, z),
            case.theirs.evaluate(AUDIT_ARCH_I386, 0, z),
            "case {case_no}: foreign architecture"
        );
    }
    assert!(calls > 100_000, "only {calls} calls compared");
}
