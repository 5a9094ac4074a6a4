//! linux.personality → personality(2): the execution domain (LINUX, LINUX32) the program runs under.

use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

pub fn apply(p: &LinuxPersonality) -> anyhow::Result<()> {
    let (persona, name) = match p.domain() {
        LinuxPersonalityDomain::PerLinux => (PER_LINUX, "LINUX"),
        LinuxPersonalityDomain::PerLinux32 => (PER_LINUX32, "LINUX32"),
    };
    crate::sys::set_personality(persona)
        .map_err(|e| anyhow::anyhow!("linux.personality: personality({name}): {}", e.desc()))
}
