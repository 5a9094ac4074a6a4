//! `linux.seccomp`, translated once at load: compiled to classic BPF ([`compile`], pure and unit-tested with a BPF
//! interpreter; checked against firecracker's `seccompiler` by [`differential`]), so that a profile the compiler
//! refuses fails with the config's other refusals, before anything exists, and `exec` reuses what its saved config
//! translates to. Loading the program and handing a notify fd over are the kernel's part: `process::seccomp`.

pub mod compile;
#[cfg(test)]
mod differential;
mod tables;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

/// A compiled `linux.seccomp`.
#[derive(Debug, Clone)]
pub struct Seccomp {
    pub program: compile::Program,
    /// `listenerPath`, kept only when a rule notifies.
    listener_path: Option<PathBuf>,
    /// `listenerMetadata`, sent to the listener with the notify fd.
    pub metadata: String,
}

impl Seccomp {
    /// Compiles `linux.seccomp`; the error names the field (`linux.seccomp: ...`).
    pub fn from_oci(s: &LinuxSeccomp) -> Result<Seccomp, String> {
        let program = compile::compile(s).map_err(|e| format!("linux.{e}"))?;
        Ok(Seccomp {
            listener_path: s.listener_path().clone().filter(|_| program.notify),
            program,
            metadata: s.listener_metadata().clone().unwrap_or_default(),
        })
    }

    /// The listener `create` (or `exec`) connects to before the clone, when a rule notifies.
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path.as_deref()
    }

    /// Whether the filter lets this native (x86_64) call through as it is (ALLOW or LOG), judged by running the
    /// compiled program here.
    pub fn lets_through(&self, syscall: &str, args: [u64; 6]) -> bool {
        let Some(nr) = compile::Abi::X86_64.number(syscall) else {
            return false;
        };
        const ACTION: u32 = 0xffff_0000;
        matches!(
            self.program
                .evaluate(compile::AUDIT_ARCH_X86_64, nr, args)
                .map(|r| r & ACTION),
            Some(compile::RET_ALLOW | compile::RET_LOG)
        )
    }
}

/// The seccomp part of `berth features`, derived from what the compiler accepts: every action it can return, every
/// operator, the x86 ABIs it has syscall tables for, and the filter flags it passes to the kernel.
pub fn features() -> serde_json::Value {
    use oci_spec::runtime::{LinuxSeccompAction as A, LinuxSeccompOperator as O};
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let actions: Vec<String> = [
        A::ScmpActKill,
        A::ScmpActKillProcess,
        A::ScmpActKillThread,
        A::ScmpActTrap,
        A::ScmpActErrno,
        A::ScmpActTrace,
        A::ScmpActAllow,
        A::ScmpActLog,
        A::ScmpActNotify,
    ]
    .into_iter()
    .filter(|a| compile::action_value(*a, None, "features").is_ok())
    .map(|a| name(serde_json::to_value(a).unwrap_or_default()))
    .collect();
    let operators: Vec<String> = [
        O::ScmpCmpNe,
        O::ScmpCmpLt,
        O::ScmpCmpLe,
        O::ScmpCmpEq,
        O::ScmpCmpGe,
        O::ScmpCmpGt,
        O::ScmpCmpMaskedEq,
    ]
    .into_iter()
    .map(|o| name(serde_json::to_value(o).unwrap_or_default()))
    .collect();
    let flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
    serde_json::json!({
        "enabled": true,
        "actions": actions,
        "operators": operators,
        "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "knownFlags": flags,
        "supportedFlags": flags,
    })
}
