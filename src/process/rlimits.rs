//! process.rlimits → setrlimit.

use crate::config::Rlimit;

#[derive(Debug, thiserror::Error)]
#[error("setrlimit {name} soft={soft} hard={hard}: {source}{hint}")]
pub struct Error {
    name: String,
    soft: u64,
    hard: u64,
    source: nix::Error,
    hint: &'static str,
}

pub fn apply(rlimits: &[Rlimit]) -> Result<(), Error> {
    for r in rlimits {
        crate::sys::setrlimit(r.resource, r.soft, r.hard).map_err(|source| Error {
            name: r.name.clone(),
            soft: r.soft,
            hard: r.hard,
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
