//! Mount options of config.json → mount(2) flags, propagation and the filesystem's data string.

use nix::mount::MsFlags;

/// A mount entry's options, sorted by what consumes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself.
    pub flags: MsFlags,
    /// Flags to clear (e.g. `rw` after `ro`, `suid`), only meaningful for the remount of a bind.
    pub cleared: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options, comma-joined.
    pub data: String,
    pub bind: bool,
    pub recursive_bind: bool,
    /// `tmpcopyup`: copy the shadowed directory's contents into a new tmpfs.
    pub tmpcopyup: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            bind: false,
            recursive_bind: false,
            tmpcopyup: false,
        }
    }
}

/// Parses fstab-style options the way runc does: known flags set or clear bits, propagation words collect, and
/// anything else is handed to the filesystem.
pub fn parse(options: &[String]) -> Result<MountOptions, String> {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "nosymfollow" => (
                MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
                MsFlags::empty(),
            ),
            "symfollow" => (
                MsFlags::empty(),
                MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
            ),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
                continue;
            }
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            p => {
                if let Some(flag) = propagation(p) {
                    o.propagation.push(flag);
                    continue;
                }
                data.push(p.to_string());
                continue;
            }
        };
        o.flags = (o.flags | set) - clear;
        o.cleared = (o.cleared | clear) - set;
    }
    if o.bind {
        o.flags |= MsFlags::MS_BIND;
        if o.recursive_bind {
            o.flags |= MsFlags::MS_REC;
        }
    }
    o.data = data.join(",");
    Ok(o)
}

/// Propagation words (as options and as linux.rootfsPropagation).
pub fn propagation(word: &str) -> Option<MsFlags> {
    Some(match word {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = p(&["ro", "rw", "nosuid", "suid"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(!o.flags.contains(MsFlags::MS_NOSUID));
        assert!(o.cleared.contains(MsFlags::MS_NOSUID));
    }

    #[test]
    fn bind_variants() {
        let o = p(&["rbind", "ro"]);
        assert!(o.bind && o.recursive_bind);
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        let o = p(&["bind"]);
        assert!(o.bind && !o.flags.contains(MsFlags::MS_REC));
    }
}
