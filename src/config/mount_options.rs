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
    /// Recursive attributes (`rro`, `rnosuid`, ...) for mount_setattr(AT_RECURSIVE): bits to set and to clear.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)): an idmapped bind mount.
    pub idmap: Option<bool>,
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
            rec_set: 0,
            rec_clr: 0,
            idmap: None,
        }
    }
}

/// Parses fstab-style options the way runc does: known flags set or clear bits, propagation words collect, and
/// anything else is handed to the filesystem.
pub fn parse(options: &[String]) -> MountOptions {
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
            "idmap" => {
                o.idmap = Some(o.idmap == Some(true));
                continue;
            }
            "ridmap" => {
                o.idmap = Some(true);
                continue;
            }
            r if recursive_attr(r).is_some() => {
                let (set, clr) = recursive_attr(r).expect("checked");
                o.rec_clr = (o.rec_clr & !set) | clr;
                o.rec_set = (o.rec_set & !clr) | set;
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
    o
}

/// Recursive attribute words → (set, clear) bits of mount_setattr, as runc reads them. Choosing an atime mode
/// clears the whole atime field first.
pub fn recursive_attr(word: &str) -> Option<(u64, u64)> {
    use crate::sys::*;
    Some(match word {
        "rro" => (MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, MOUNT_ATTR_RDONLY),
        "rnosuid" => (MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, MOUNT_ATTR_NOSUID),
        "rnodev" => (MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, MOUNT_ATTR_NODEV),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
        // The atime field is an enum whose relatime value is 0: "clear relatime" clears nothing, so the mount keeps
        // its atime mode (runc and runtime-tools read it so; choosing strictatime would be a guess).
        "rnorelatime" => (0, 0),
        "rnoatime" => (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
        "ratime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
        "rstrictatime" => (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
        "rnostrictatime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// The per-mount flags of `flags` as mount_setattr bits (set, clear) for a mount being made: what is asked is set,
/// every other per-mount flag is cleared (as a bind remount with mount(2) does). The atime state (mode and
/// nodiratime) is mount(2)'s too: naming none of noatime, nodiratime, relatime, strictatime keeps it; naming any
/// replaces all of it, the mode being strictatime over noatime over the default relatime (so `nodiratime` alone
/// gives relatime,nodiratime, as runc's mounts_sshfs.bats wants).
pub fn mount_attrs(flags: MsFlags) -> (u64, u64) {
    use crate::sys::*;
    let mut set = 0;
    for (flag, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        (
            MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
            MOUNT_ATTR_NOSYMFOLLOW,
        ),
    ] {
        if flags.contains(flag) {
            set |= attr;
        }
    }
    let mut clr = (MOUNT_ATTR_RDONLY
        | MOUNT_ATTR_NOSUID
        | MOUNT_ATTR_NODEV
        | MOUNT_ATTR_NOEXEC
        | MOUNT_ATTR_NOSYMFOLLOW)
        & !set;
    let atime_words = MsFlags::MS_NOATIME
        | MsFlags::MS_NODIRATIME
        | MsFlags::MS_RELATIME
        | MsFlags::MS_STRICTATIME;
    if flags.intersects(atime_words) {
        set |= if flags.contains(MsFlags::MS_STRICTATIME) {
            MOUNT_ATTR_STRICTATIME
        } else if flags.contains(MsFlags::MS_NOATIME) {
            MOUNT_ATTR_NOATIME
        } else {
            MOUNT_ATTR_RELATIME
        };
        clr |= MOUNT_ATTR__ATIME | (MOUNT_ATTR_NODIRATIME & !set);
    }
    (set, clr)
}

/// A filesystem's data string as fsconfig(2) options: `key=value` or a bare `flag`, split at commas outside double
/// quotes, the quotes dropped (an SELinux `context="..."` holds commas).
pub fn fs_params(data: &str) -> Vec<(String, Option<String>)> {
    let mut items = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for c in data.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    items.push(cur);
    items
        .into_iter()
        .filter(|i| !i.is_empty())
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (i, None),
        })
        .collect()
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
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
    fn recursive_attributes_set_and_clear() {
        use crate::sys::*;
        let o = p(&["rbind", "rro", "rnosuid", "rnoatime", "size=1k"]);
        assert_eq!(
            o.rec_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_clr, MOUNT_ATTR__ATIME);
        assert_eq!(
            o.data, "size=1k",
            "recursive words never reach the data string"
        );
        assert!(!o.flags.contains(MsFlags::MS_RDONLY), "rro is not ro");
        let o = p(&["rro", "rrw", "rnodev", "rdev", "rnoexec"]);
        assert_eq!(o.rec_set, MOUNT_ATTR_NOEXEC);
        assert_eq!(o.rec_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV);
        let o = p(&["rnosymfollow", "rstrictatime"]);
        assert_eq!(o.rec_set, MOUNT_ATTR_NOSYMFOLLOW | MOUNT_ATTR_STRICTATIME);
        assert_eq!(o.rec_clr, MOUNT_ATTR__ATIME);
    }

    #[test]
    fn idmap_tmpcopyup_and_nosymfollow() {
        assert_eq!(p(&["bind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["bind", "ridmap"]).idmap, Some(true));
        assert_eq!(p(&["bind"]).idmap, None);
        assert!(p(&["tmpcopyup"]).tmpcopyup);
        let o = p(&[
            "nosymfollow",
            "noexec",
            "sync",
            "dirsync",
            "mand",
            "nodiratime",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_SYNCHRONOUS
                | MsFlags::MS_DIRSYNC
                | MsFlags::MS_MANDLOCK
                | MsFlags::MS_NODIRATIME
        );
        assert!(o.data.is_empty());
    }

    #[test]
    fn per_mount_attributes_set_what_is_asked_and_clear_the_rest() {
        use crate::sys::*;
        let (set, clr) = mount_attrs(p(&["bind", "ro", "nosuid"]).flags);
        assert_eq!(set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        // No atime word: the atime state (mode and nodiratime) is left alone.
        assert_eq!(
            clr,
            MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW
        );
        // "atime" and "norelatime" clear flags that are not set: no atime word either (runc's "FIXME" cases).
        for words in [&["bind", "atime"][..], &["bind", "norelatime"]] {
            let (set, clr) = mount_attrs(p(words).flags);
            assert_eq!(
                (set & MOUNT_ATTR__ATIME, clr & MOUNT_ATTR__ATIME),
                (0, 0),
                "{words:?}"
            );
            assert_eq!(clr & MOUNT_ATTR_NODIRATIME, 0, "{words:?}");
        }
        let (set, clr) = mount_attrs(p(&["noatime", "strictatime"]).flags);
        assert_eq!(set & MOUNT_ATTR__ATIME, MOUNT_ATTR_STRICTATIME);
        assert_eq!(clr & MOUNT_ATTR__ATIME, MOUNT_ATTR__ATIME);
        let (set, clr) = mount_attrs(p(&["relatime"]).flags);
        assert_eq!(set, 0);
        assert_eq!(
            clr,
            MOUNT_ATTR__ATIME
                | MOUNT_ATTR_NODIRATIME
                | MOUNT_ATTR_RDONLY
                | MOUNT_ATTR_NOSUID
                | MOUNT_ATTR_NODEV
                | MOUNT_ATTR_NOEXEC
                | MOUNT_ATTR_NOSYMFOLLOW
        );
        // nodiratime alone: relatime (0) and nodiratime, whatever the mode was (noatime cleared).
        let (set, clr) = mount_attrs(p(&["bind", "nodiratime"]).flags);
        assert_eq!(set, MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_RELATIME);
        assert_eq!(
            clr & (MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME),
            MOUNT_ATTR__ATIME
        );
        let (set, _) = mount_attrs(p(&["bind", "nodiratime", "strictatime"]).flags);
        assert_eq!(set, MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_STRICTATIME);
    }

    #[test]
    fn rnorelatime_changes_nothing() {
        let o = p(&["rnorelatime"]);
        assert_eq!((o.rec_set, o.rec_clr), (0, 0));
    }

    #[test]
    fn data_becomes_fsconfig_parameters() {
        assert_eq!(
            fs_params("mode=755,size=65536k,noswap,context=\"a:b:c:s0:c1,c2\""),
            vec![
                ("mode".into(), Some("755".into())),
                ("size".into(), Some("65536k".into())),
                ("noswap".into(), None),
                ("context".into(), Some("a:b:c:s0:c1,c2".into())),
            ]
        );
        assert!(fs_params("").is_empty());
    }

    #[test]
    fn every_propagation_word() {
        let o = p(&[
            "private",
            "rprivate",
            "shared",
            "rshared",
            "slave",
            "rslave",
            "unbindable",
            "runbindable",
        ]);
        assert_eq!(o.propagation.len(), 8);
        assert_eq!(o.propagation[7], MsFlags::MS_UNBINDABLE | MsFlags::MS_REC);
        assert!(o.data.is_empty());
        assert_eq!(propagation("rshared2"), None);
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
