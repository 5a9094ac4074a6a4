//! linux.seccomp → a classic BPF program for SECCOMP_SET_MODE_FILTER. Pure: no syscalls, unit-tested with a small
//! BPF interpreter below.
//!
//! Why not seccompiler (a dev-dependency that checks this compiler, see `differential.rs`): it builds a filter for one architecture and has no SCMP_ACT_NOTIFY, while OCI
//! profiles (docker's, podman's) list x86_64, x86 and x32 together and use every action. The program is:
//!
//! ```text
//!   ld arch; x86_64 → section; i386 → section (when listed); else bad-arch action
//!   section: ld nr; (x86_64: nr ≥ X32 bit → the x32 section when listed, else bad arch)
//!            ascending ranges of syscalls sharing one plain action: nr > hi → next range; nr < lo → default;
//!            else the action (or a jump to the syscall's argument rules)
//!            past the last range: ENOSYS for a deny-by-default profile (as runc), else the default action
//!   argument rules: conditional rules in config order (all conditions of a rule must hold), first match wins;
//!            then the syscall's unconditional action, or the default
//! ```
//!
//! Semantics follow runc (libseccomp): the native arch is always in the filter; names the arch does not know are
//! skipped; a rule whose action equals the default action is dropped; when one rule names the same argument twice,
//! each condition becomes a rule of its own (runc's fallback); 32-bit ABIs (x86, x32) compare the low 32 bits only.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op,
};

use super::tables;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// What a syscall of an architecture the profile does not list gets (libseccomp kills too; berth kills the whole
/// process rather than one thread, so that no half-dead program runs on).
pub const RET_BAD_ARCH: u32 = RET_KILL_PROCESS;

pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

// seccomp_data offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: usize) -> u32 {
    16 + 8 * i as u32
}
const fn off_arg_hi(i: usize) -> u32 {
    20 + 8 * i as u32
}

// Classic BPF opcodes.
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JMP_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JMP_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used for the {0} syscall (berth needs it to hand over the notify fd)")]
    NotifyForbidden(String),
    #[error("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")]
    NoListenerPath,
    #[error(
        "seccomp: errnoRet {value} on {what}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one"
    )]
    ErrnoRetNotAllowed { what: String, value: u32 },
    #[error("seccomp: errnoRet {value} on {what} does not fit the 16 bits of the return data")]
    ErrnoRetTooBig { what: String, value: u32 },
    #[error("seccomp: argument index {index} of {syscall} is out of range (0-5)")]
    ArgIndex { syscall: String, index: usize },
    #[error("seccomp: the filter needs {0} instructions, more than the kernel's 4096")]
    TooLarge(usize),
    #[error("seccomp: the argument rules of {0} are too long for a BPF jump")]
    JumpTooFar(String),
    #[error("seccomp: seccomp filters are supported on x86_64 only")]
    UnsupportedHost,
}

/// A compiled filter: the instructions and the flags for seccomp(SECCOMP_SET_MODE_FILTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub insns: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_*; includes NEW_LISTENER when some rule notifies.
    pub flags: u32,
    pub notify: bool,
}

/// The three x86 ABIs a profile can name on an x86_64 host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Abi {
    X86_64,
    I386,
    X32,
}

impl Abi {
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => tables::X86_64,
            Abi::I386 => tables::I386,
            Abi::X32 => tables::X32,
        }
    }

    /// The number the filter sees for `name` (x32 numbers carry the X32 bit), if this ABI has the syscall.
    pub fn number(self, name: &str) -> Option<u32> {
        let t = self.table();
        let i = t.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        Some(match self {
            Abi::X32 => t[i].1 | X32_SYSCALL_BIT,
            _ => t[i].1,
        })
    }

    fn wide_args(self) -> bool {
        self == Abi::X86_64
    }
}

/// The value the filter returns for an action.
pub fn action_value(action: Action, errno_ret: Option<u32>, what: &str) -> Result<u32, Error> {
    let data = |default: u32| -> Result<u32, Error> {
        let v = errno_ret.unwrap_or(default);
        if v > 0xffff {
            return Err(Error::ErrnoRetTooBig {
                what: what.to_string(),
                value: v,
            });
        }
        Ok(v)
    };
    let plain = |v: u32| -> Result<u32, Error> {
        match errno_ret {
            Some(value) => Err(Error::ErrnoRetNotAllowed {
                what: what.to_string(),
                value,
            }),
            None => Ok(v),
        }
    };
    match action {
        Action::ScmpActKill | Action::ScmpActKillThread => plain(RET_KILL_THREAD),
        Action::ScmpActKillProcess => plain(RET_KILL_PROCESS),
        Action::ScmpActTrap => plain(RET_TRAP),
        Action::ScmpActErrno => Ok(RET_ERRNO | data(libc::EPERM as u32)?),
        Action::ScmpActTrace => Ok(RET_TRACE | data(libc::EPERM as u32)?),
        Action::ScmpActNotify => plain(RET_USER_NOTIF),
        Action::ScmpActLog => plain(RET_LOG),
        Action::ScmpActAllow => plain(RET_ALLOW),
    }
}

/// One argument comparison, already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: usize,
    op: Op,
    value: u64,
    value_two: u64,
}

/// All conditions must hold for `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct SyscallRules {
    conditional: Vec<Rule>,
    unconditional: Option<u32>,
}

/// Compiles a profile for an x86_64 host.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, Error> {
    if !cfg!(target_arch = "x86_64") {
        return Err(Error::UnsupportedHost);
    }
    let default = action_value(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "defaultAction",
    )?;
    if seccomp.default_action() == Action::ScmpActNotify {
        return Err(Error::NotifyDefault);
    }
    let abis = abis(seccomp.architectures().as_deref().unwrap_or(&[]));

    let mut notify = false;
    let mut per_abi: BTreeMap<Abi, BTreeMap<u32, SyscallRules>> = BTreeMap::new();
    for abi in &abis {
        per_abi.insert(*abi, BTreeMap::new());
    }
    for entry in seccomp.syscalls().iter().flatten() {
        let what = entry.names().join(",");
        let action = action_value(entry.action(), entry.errno_ret(), &what)?;
        if entry.action() == Action::ScmpActNotify {
            if let Some(bad) = entry
                .names()
                .iter()
                .find(|n| *n == "sendmsg" || *n == "write")
            {
                return Err(Error::NotifyForbidden(bad.clone()));
            }
        }
        let rules = rules_of(entry.args().as_deref().unwrap_or(&[]), action, &what)?;
        if action == default {
            continue; // runc drops these: libseccomp refuses a rule that repeats the default
        }
        notify |= entry.action() == Action::ScmpActNotify;
        for name in entry.names() {
            for (abi, map) in per_abi.iter_mut() {
                let Some(nr) = abi.number(name) else {
                    continue; // unknown to this ABI: skipped, as runc does
                };
                let slot = map.entry(nr).or_default();
                match &rules {
                    None => {
                        slot.unconditional.get_or_insert(action);
                    }
                    Some(rs) => slot.conditional.extend(rs.iter().cloned()),
                }
            }
        }
    }
    if notify && seccomp.listener_path().is_none() {
        return Err(Error::NoListenerPath);
    }

    // No `flags` at all (an empty list is flags) means SPEC_ALLOW, as runc does (since 1.1): a filter alone does
    // not force the speculative-store-bypass mitigation on the container, whose cost is large; the kernel's
    // default for processes without seccomp stays in force.
    let mut flags = match seccomp.flags() {
        None => FLAG_SPEC_ALLOW,
        Some(_) => 0,
    };
    for f in seccomp.flags().iter().flatten() {
        flags |= match f {
            // berth's init is single-threaded when it loads the filter: there is nothing to synchronise, and
            // TSYNC cannot be combined with NEW_LISTENER.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    if notify {
        flags |= FLAG_NEW_LISTENER;
    } else {
        // Only meaningful with a listener; the kernel refuses it alone.
        flags &= !FLAG_WAIT_KILLABLE_RECV;
    }

    let insns = assemble(&generate(default, &per_abi)?)?;
    if insns.len() > MAX_INSNS {
        return Err(Error::TooLarge(insns.len()));
    }
    Ok(Program {
        insns,
        flags,
        notify,
    })
}

/// The ABIs in the filter: always the native one; x86 and x32 when listed; other architectures cannot run on an
/// x86_64 kernel and are left out.
fn abis(arches: &[Arch]) -> Vec<Abi> {
    let mut out = vec![Abi::X86_64];
    for a in arches {
        let abi = match a {
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchX32 => Abi::X32,
            _ => continue,
        };
        if !out.contains(&abi) {
            out.push(abi);
        }
    }
    out
}

/// The rules one syscall entry makes: None when unconditional.
fn rules_of(args: &[LinuxSeccompArg], action: u32, what: &str) -> Result<Option<Vec<Rule>>, Error> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut conds = Vec::new();
    let mut seen = [0u8; 6];
    for a in args {
        if a.index() > 5 {
            return Err(Error::ArgIndex {
                syscall: what.to_string(),
                index: a.index(),
            });
        }
        seen[a.index()] += 1;
        conds.push(Cond {
            index: a.index(),
            op: a.op(),
            value: a.value(),
            value_two: a.value_two().unwrap_or(0),
        });
    }
    if seen.iter().any(|n| *n > 1) {
        // runc's fallback: one argument compared twice → each comparison is a rule of its own (OR).
        return Ok(Some(
            conds
                .into_iter()
                .map(|c| Rule {
                    conds: vec![c],
                    action,
                })
                .collect(),
        ));
    }
    Ok(Some(vec![Rule { conds, action }]))
}

// --- a tiny assembler with forward labels -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Next,
    Label(usize),
}

#[derive(Debug, Clone)]
enum Item {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
        owner: usize,
    },
    Ja(usize),
    Label(usize),
}

struct Asm {
    items: Vec<Item>,
    labels: usize,
    /// Index into `owners` naming what the current jumps belong to (for error messages).
    owner: usize,
    owners: Vec<String>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            items: Vec::new(),
            labels: 0,
            owner: 0,
            owners: vec!["the dispatch".into()],
        }
    }
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn bind(&mut self, l: usize) {
        self.items.push(Item::Label(l));
    }
    fn ld(&mut self, off: u32) {
        self.items.push(Item::Stmt {
            code: LD_W_ABS,
            k: off,
        });
    }
    fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: ALU_AND_K, k });
    }
    fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: RET_K, k });
    }
    fn ja(&mut self, l: usize) {
        self.items.push(Item::Ja(l));
    }
    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        let owner = self.owner;
        self.items.push(Item::Jump {
            code,
            k,
            jt,
            jf,
            owner,
        });
    }
    fn owned_by(&mut self, what: String) {
        self.owners.push(what);
        self.owner = self.owners.len() - 1;
    }
}

fn assemble(asm: &Asm) -> Result<Vec<libc::sock_filter>, Error> {
    let mut at = vec![usize::MAX; asm.labels];
    let mut pc = 0;
    for it in &asm.items {
        match it {
            Item::Label(l) => at[*l] = pc,
            _ => pc += 1,
        }
    }
    let mut out = Vec::with_capacity(pc);
    for it in &asm.items {
        let here = out.len();
        let rel = |t: Target| -> Option<usize> {
            match t {
                Target::Next => Some(0),
                Target::Label(l) => at[l].checked_sub(here + 1),
            }
        };
        let insn = match it {
            Item::Label(_) => continue,
            Item::Stmt { code, k } => sock_filter(*code, 0, 0, *k),
            Item::Ja(l) => {
                let off = rel(Target::Label(*l))
                    .ok_or_else(|| Error::JumpTooFar(asm.owners[0].clone()))?;
                sock_filter(JMP_JA, 0, 0, off as u32)
            }
            Item::Jump {
                code,
                k,
                jt,
                jf,
                owner,
            } => {
                let far = || Error::JumpTooFar(asm.owners[*owner].clone());
                let jt = rel(*jt).filter(|o| *o <= 255).ok_or_else(far)?;
                let jf = rel(*jf).filter(|o| *o <= 255).ok_or_else(far)?;
                sock_filter(*code, jt as u8, jf as u8, *k)
            }
        };
        out.push(insn);
    }
    Ok(out)
}

fn sock_filter(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

// --- code generation ------------------------------------------------------------------------------------------

/// A run of consecutive syscall numbers with one outcome.
struct Range {
    lo: u32,
    hi: u32,
    /// Plain action, or None: the syscall (lo == hi) has argument rules.
    action: Option<u32>,
}

fn ranges(rules: &BTreeMap<u32, SyscallRules>) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for (nr, r) in rules {
        let action = if r.conditional.is_empty() {
            r.unconditional
        } else {
            None
        };
        if let (Some(last), Some(a)) = (out.last_mut(), action) {
            if last.action == Some(a) && last.hi.checked_add(1) == Some(*nr) {
                last.hi = *nr;
                continue;
            }
        }
        out.push(Range {
            lo: *nr,
            hi: *nr,
            action,
        });
    }
    out
}

fn generate(
    default: u32,
    per_abi: &BTreeMap<Abi, BTreeMap<u32, SyscallRules>>,
) -> Result<Asm, Error> {
    let mut asm = Asm::new();
    let section: BTreeMap<Abi, usize> = per_abi.keys().map(|a| (*a, asm.label())).collect();
    // Deny-by-default profiles answer syscalls newer than any they name with ENOSYS (runc does the same), so that
    // programs fall back from syscalls the profile's author could not know (clone3 → clone, ...).
    let past_end = match default {
        RET_ALLOW | RET_LOG => default,
        _ => RET_ERRNO | libc::ENOSYS as u32,
    };

    asm.ld(OFF_ARCH);
    let after = asm.label();
    asm.jump(
        JMP_JEQ_K,
        AUDIT_ARCH_X86_64,
        Target::Next,
        Target::Label(after),
    );
    asm.ja(section[&Abi::X86_64]);
    asm.bind(after);
    if let Some(l) = section.get(&Abi::I386) {
        let after = asm.label();
        asm.jump(
            JMP_JEQ_K,
            AUDIT_ARCH_I386,
            Target::Next,
            Target::Label(after),
        );
        asm.ja(*l);
        asm.bind(after);
    }
    asm.ret(RET_BAD_ARCH);

    let mut bodies: Vec<(usize, Abi, u32, &SyscallRules)> = Vec::new();
    for (abi, rules) in per_abi {
        asm.bind(section[abi]);
        asm.ld(OFF_NR);
        if *abi == Abi::X86_64 {
            let native = asm.label();
            asm.jump(
                JMP_JGE_K,
                X32_SYSCALL_BIT,
                Target::Next,
                Target::Label(native),
            );
            // nr -1 is no x32 syscall: tracers use it to skip a syscall (libseccomp lets it through too).
            asm.jump(JMP_JEQ_K, u32::MAX, Target::Label(native), Target::Next);
            match section.get(&Abi::X32) {
                Some(l) => asm.ja(*l),
                None => asm.ret(RET_BAD_ARCH),
            }
            asm.bind(native);
        }
        for range in ranges(rules) {
            let next = asm.label();
            let inside = asm.label();
            asm.jump(JMP_JGT_K, range.hi, Target::Label(next), Target::Next);
            asm.jump(JMP_JGE_K, range.lo, Target::Label(inside), Target::Next);
            asm.ret(default);
            asm.bind(inside);
            match range.action {
                Some(a) => asm.ret(a),
                None => {
                    let body = asm.label();
                    asm.ja(body);
                    bodies.push((body, *abi, range.lo, &rules[&range.lo]));
                }
            }
            asm.bind(next);
        }
        asm.ret(past_end);
    }

    for (label, abi, nr, rules) in bodies {
        asm.owned_by(format!("syscall {nr} ({abi:?})"));
        asm.bind(label);
        for rule in &rules.conditional {
            let fail = asm.label();
            for c in &rule.conds {
                compare(&mut asm, abi.wide_args(), c, fail);
            }
            asm.ret(rule.action);
            asm.bind(fail);
        }
        asm.ret(rules.unconditional.unwrap_or(default));
    }
    Ok(asm)
}

/// Emits a comparison of argument `c.index` that falls through when it holds and jumps to `fail` when not.
/// 64-bit arguments are compared as (high word, low word); 32-bit ABIs compare the low word only.
fn compare(asm: &mut Asm, wide: bool, c: &Cond, fail: usize) {
    let f = Target::Label(fail);
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let ok = asm.label();
    let o = Target::Label(ok);
    let n = Target::Next;
    let lo = off_arg_lo(c.index);
    let hi = off_arg_hi(c.index);
    match c.op {
        Op::ScmpCmpMaskedEq => {
            let (mh, ml) = (vh, vl);
            let (dh, dl) = ((c.value_two >> 32) as u32, c.value_two as u32);
            if wide {
                asm.ld(hi);
                asm.and(mh);
                asm.jump(JMP_JEQ_K, dh, n, f);
            }
            asm.ld(lo);
            asm.and(ml);
            asm.jump(JMP_JEQ_K, dl, n, f);
        }
        Op::ScmpCmpEq => {
            if wide {
                asm.ld(hi);
                asm.jump(JMP_JEQ_K, vh, n, f);
            }
            asm.ld(lo);
            asm.jump(JMP_JEQ_K, vl, n, f);
        }
        Op::ScmpCmpNe => {
            if wide {
                asm.ld(hi);
                asm.jump(JMP_JEQ_K, vh, n, o);
            }
            asm.ld(lo);
            asm.jump(JMP_JEQ_K, vl, f, n);
        }
        // a > v: hi > vh, or hi == vh and lo > vl. (The others are built the same way.)
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            let last = if c.op == Op::ScmpCmpGt {
                JMP_JGT_K
            } else {
                JMP_JGE_K
            };
            if wide {
                asm.ld(hi);
                asm.jump(JMP_JGT_K, vh, o, n);
                asm.jump(JMP_JEQ_K, vh, n, f);
            }
            asm.ld(lo);
            asm.jump(last, vl, n, f);
        }
        // a < v is !(a >= v); a <= v is !(a > v).
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            let last = if c.op == Op::ScmpCmpLt {
                JMP_JGE_K
            } else {
                JMP_JGT_K
            };
            if wide {
                asm.ld(hi);
                asm.jump(JMP_JGT_K, vh, f, n);
                asm.jump(JMP_JEQ_K, vh, n, o);
            }
            asm.ld(lo);
            asm.jump(last, vl, f, n);
        }
    }
    asm.bind(ok);
}

impl Program {
    /// What the filter answers for one call on `arch` (the full SECCOMP_RET_* value), computed here without the
    /// kernel; None for a program outside the subset this compiler emits.
    pub fn evaluate(&self, arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
        evaluate(&self.insns, arch, nr, args)
    }
}

/// A classic BPF interpreter for the instructions [`compile`] emits, run on one seccomp_data.
fn evaluate(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
    let word = |off: u32| -> Option<u32> {
        Some(match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let arg = args[(o as usize - 16) / 8];
                if o % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => return None,
        })
    };
    let (mut a, mut pc) = (0u32, 0usize);
    // Jumps only go forward, so a program ends within its length.
    while let Some(i) = prog.get(pc) {
        pc += 1;
        match i.code {
            LD_W_ABS => a = word(i.k)?,
            ALU_AND_K => a &= i.k,
            RET_K => return Some(i.k),
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                let taken = match i.code {
                    JMP_JEQ_K => a == i.k,
                    JMP_JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        evaluate(prog, arch, nr, args).expect("the compiler emits only what the interpreter runs")
    }

    fn profile(json: &str) -> Program {
        compile(&serde_json::from_str(json).unwrap()).unwrap()
    }

    fn nr(name: &str) -> u32 {
        Abi::X86_64.number(name).unwrap()
    }

    fn x86_64(p: &Program, name: &str, args: [u64; 6]) -> u32 {
        run(&p.insns, AUDIT_ARCH_X86_64, nr(name), args)
    }

    #[test]
    fn tables_are_sorted_and_know_the_usual_syscalls() {
        for t in [tables::X86_64, tables::I386, tables::X32] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(Abi::X86_64.number("read"), Some(0));
        assert_eq!(Abi::X86_64.number("mkdir"), Some(83));
        assert_eq!(Abi::I386.number("mkdir"), Some(39));
        assert_eq!(Abi::X32.number("ioctl"), Some(514 | X32_SYSCALL_BIT));
        assert_eq!(Abi::I386.number("socketcall"), Some(102));
        assert_eq!(Abi::X86_64.number("socketcall"), None);
        assert_eq!(Abi::X86_64.number("mseal"), Some(462));
    }

    #[test]
    fn actions_and_errno() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":17},
            {"names":["rmdir"],"action":"SCMP_ACT_ERRNO"},
            {"names":["chdir"],"action":"SCMP_ACT_KILL"},
            {"names":["fchdir"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["getcwd"],"action":"SCMP_ACT_TRAP"},
            {"names":["sync"],"action":"SCMP_ACT_LOG"},
            {"names":["syncfs"],"action":"SCMP_ACT_TRACE","errnoRet":5},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
            {"names":["no_such_syscall"],"action":"SCMP_ACT_KILL"}]}"#,
        );
        let z = [0; 6];
        assert_eq!(x86_64(&p, "mkdir", z), RET_ERRNO | 17);
        assert_eq!(x86_64(&p, "rmdir", z), RET_ERRNO | libc::EPERM as u32);
        assert_eq!(x86_64(&p, "chdir", z), RET_KILL_THREAD);
        assert_eq!(x86_64(&p, "fchdir", z), RET_KILL_PROCESS);
        assert_eq!(x86_64(&p, "getcwd", z), RET_TRAP);
        assert_eq!(x86_64(&p, "sync", z), RET_LOG);
        assert_eq!(x86_64(&p, "syncfs", z), RET_TRACE | 5);
        assert_eq!(x86_64(&p, "getpid", z), RET_ALLOW);
        assert_eq!(x86_64(&p, "read", z), RET_ALLOW);
        assert_eq!(run(&p.insns, AUDIT_ARCH_X86_64, 10_000, z), RET_ALLOW);
        assert!(!p.notify);
        // No flags given: SPEC_ALLOW (runc); an empty list is no flags.
        assert_eq!(p.flags, FLAG_SPEC_ALLOW);
        let none = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":[]}"#);
        assert_eq!(none.flags, 0);
    }

    #[test]
    fn default_errno_ret_and_enosys_past_the_end() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[
            {"names":["read","write","openat","getpid","getppid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let z = [0; 6];
        for s in ["read", "write", "openat", "getpid", "getppid"] {
            assert_eq!(x86_64(&p, s, z), RET_ALLOW, "{s}");
        }
        for s in ["open", "close", "mkdir", "stat", "getuid"] {
            assert_eq!(x86_64(&p, s, z), RET_ERRNO | 1, "{s}");
        }
        // Past the highest syscall the profile names: ENOSYS, not the default.
        assert_eq!(x86_64(&p, "clone3", z), RET_ERRNO | libc::ENOSYS as u32);
        // Consecutive numbers share one range: read(0), write(1).
        let g = generate(RET_ERRNO | 1, &{
            let mut m = BTreeMap::new();
            let mut r = BTreeMap::new();
            for n in [0, 1, 2, 7] {
                r.insert(
                    n,
                    SyscallRules {
                        unconditional: Some(RET_ALLOW),
                        ..Default::default()
                    },
                );
            }
            m.insert(Abi::X86_64, r);
            m
        })
        .unwrap();
        let prog = assemble(&g).unwrap();
        for n in 0..10 {
            let want = match n {
                0 | 1 | 2 | 7 => RET_ALLOW,
                8 | 9 => RET_ERRNO | libc::ENOSYS as u32,
                _ => RET_ERRNO | 1,
            };
            assert_eq!(run(&prog, AUDIT_ARCH_X86_64, n, z), want, "nr {n}");
        }
    }

    #[test]
    fn architectures() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_ARM"],
            "syscalls":[{"names":["mkdir","socketcall"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        );
        let z = [0; 6];
        assert_eq!(run(&p.insns, AUDIT_ARCH_X86_64, 83, z), RET_ERRNO | 13);
        assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 39, z), RET_ERRNO | 13);
        assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 102, z), RET_ERRNO | 13);
        assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 83, z), RET_ALLOW);
        assert_eq!(
            run(&p.insns, AUDIT_ARCH_X86_64, 83 | X32_SYSCALL_BIT, z),
            RET_ERRNO | 13
        );
        assert_eq!(run(&p.insns, 0x4000_0028, 83, z), RET_BAD_ARCH);

        // Without x86/x32 listed: only x86_64 (native, always), x32 syscalls are a bad arch.
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 39, z), RET_BAD_ARCH);
        assert_eq!(
            run(&p.insns, AUDIT_ARCH_X86_64, 83 | X32_SYSCALL_BIT, z),
            RET_BAD_ARCH
        );
        assert_eq!(run(&p.insns, AUDIT_ARCH_X86_64, 83, z), RET_ERRNO | 1);
        // syscall(-1) is not mistaken for an x32 syscall.
        assert_eq!(run(&p.insns, AUDIT_ARCH_X86_64, u32::MAX, z), RET_ALLOW);
    }

    /// Every operator against values around the comparand, with differences in the high and the low word.
    #[test]
    fn operators_compare_64_bit_values() {
        let v: u64 = 0x0000_0001_0000_0005;
        let probes: [u64; 9] = [0, 4, 5, 6, v - 1, v, v + 1, 0x0000_0002_0000_0000, u64::MAX];
        for (op, f) in [
            ("SCMP_CMP_EQ", (|a, b| a == b) as fn(u64, u64) -> bool),
            ("SCMP_CMP_NE", |a, b| a != b),
            ("SCMP_CMP_LT", |a, b| a < b),
            ("SCMP_CMP_LE", |a, b| a <= b),
            ("SCMP_CMP_GT", |a, b| a > b),
            ("SCMP_CMP_GE", |a, b| a >= b),
        ] {
            let p = profile(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO",
                "errnoRet":9,"args":[{{"index":2,"value":{v},"op":"{op}"}}]}}]}}"#
            ));
            for a in probes {
                let want = if f(a, v) { RET_ERRNO | 9 } else { RET_ALLOW };
                assert_eq!(x86_64(&p, "mkdir", [0, 0, a, 0, 0, 0]), want, "{op} {a:#x}");
            }
        }
        // MASKED_EQ: (arg & value) == valueTwo, both words.
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO",
            "args":[{"index":0,"value":18446744069414584335,"valueTwo":4294967298,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        // mask 0xffffffff0000000f, datum 0x0000000100000002
        for (a, hit) in [
            (0x0000_0001_0000_0002u64, true),
            (0x0000_0001_1234_5672, true),
            (0x0000_0001_0000_0003, false),
            (0x0000_0003_0000_0002, false),
            (0x0000_0000_0000_0002, false),
        ] {
            let want = if hit { RET_ERRNO | 1 } else { RET_ALLOW };
            assert_eq!(x86_64(&p, "mkdir", [a, 0, 0, 0, 0, 0]), want, "{a:#x}");
        }
    }

    #[test]
    fn several_conditions_and_several_rules() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[
                {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":3,"op":"SCMP_CMP_LE"}]},
            {"names":["mkdir"],"action":"SCMP_ACT_ALLOW","args":[
                {"index":1,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let deny = RET_ERRNO | libc::EPERM as u32;
        let a = |x: u64, y: u64| [x, y, 0, 0, 0, 0];
        assert_eq!(x86_64(&p, "personality", a(0, 0)), RET_ALLOW);
        assert_eq!(x86_64(&p, "personality", a(8, 0)), RET_ALLOW);
        assert_eq!(x86_64(&p, "personality", a(4, 0)), deny);
        // AND within a rule.
        assert_eq!(x86_64(&p, "socket", a(1, 2)), RET_ALLOW);
        assert_eq!(x86_64(&p, "socket", a(1, 4)), deny);
        assert_eq!(x86_64(&p, "socket", a(2, 2)), deny);
        // The same argument twice: OR (runc's fallback).
        assert_eq!(x86_64(&p, "mkdir", a(0, 1)), RET_ALLOW);
        assert_eq!(x86_64(&p, "mkdir", a(0, 2)), RET_ALLOW);
        assert_eq!(x86_64(&p, "mkdir", a(0, 3)), deny);
        assert_eq!(x86_64(&p, "getpid", a(0, 0)), RET_ALLOW);
    }

    #[test]
    fn i386_compares_the_low_word_only() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let pers = Abi::I386.number("personality").unwrap();
        let deny = RET_ERRNO | 1;
        assert_eq!(
            run(
                &p.insns,
                AUDIT_ARCH_I386,
                pers,
                [0xffff_ffff, 0, 0, 0, 0, 0]
            ),
            deny
        );
        assert_eq!(
            run(&p.insns, AUDIT_ARCH_I386, pers, [1, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
    }

    #[test]
    fn rules_repeating_the_default_are_dropped_and_flags_set() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","flags":["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ALLOW"},{"names":["rmdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(p.notify);
        assert_eq!(
            p.flags,
            FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER
        );
        assert_eq!(x86_64(&p, "rmdir", [0; 6]), RET_USER_NOTIF);
        assert_eq!(x86_64(&p, "mkdir", [0; 6]), RET_ALLOW);
    }

    #[test]
    fn errors() {
        let err = |json: &str| compile(&serde_json::from_str(json).unwrap()).unwrap_err();
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x"}"#),
            Error::NotifyDefault
        );
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#
            ),
            Error::NoListenerPath
        );
        let forbidden = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(matches!(forbidden, Error::NotifyForbidden(_)));
        // runc's words, which its integration suite greps.
        assert!(forbidden
            .to_string()
            .contains("SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall"));
        assert!(matches!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#
            ),
            Error::ErrnoRetNotAllowed { .. }
        ));
        assert!(matches!(
            err(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#),
            Error::ErrnoRetTooBig { .. }
        ));
        assert!(matches!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#
            ),
            Error::ArgIndex { index: 6, .. }
        ));
    }

    #[test]
    fn a_rule_for_every_syscall_of_every_abi_fits() {
        let names: Vec<&str> = tables::X86_64
            .iter()
            .chain(tables::I386)
            .chain(tables::X32)
            .map(|(n, _)| *n)
            .collect();
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0}]},
            ]
        });
        let p = compile(&serde_json::from_value(json).unwrap()).unwrap();
        assert!(p.insns.len() < 400, "{} instructions", p.insns.len());
        assert_eq!(x86_64(&p, "getpid", [0; 6]), RET_ALLOW);
    }
}
