//! process.rlimits → setrlimit.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, thiserror::Error)]
#[error("setrlimit {name} soft={soft} hard={hard}: {source}{hint}")]
pub struct Error {
    name: String,
    soft: u64,
    hard: u64,
    source: nix::Error,
    hint: &'static str,
}

pub fn resource(t: PosixRlimitType) -> u32 {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn apply(rlimits: &[PosixRlimit]) -> Result<(), Error> {
    for r in rlimits {
        crate::sys::setrlimit(resource(r.typ()), r.soft(), r.hard()).map_err(|source| Error {
            name: format!("{}", r.typ()),
            soft: r.soft(),
            hard: r.hard(),
            source,
            hint: if source == nix::errno::Errno::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            },
        })?;
    }
    Ok(())
}
