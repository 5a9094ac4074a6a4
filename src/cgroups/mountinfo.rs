//! Which cgroup hierarchies are mounted where, and which cgroup berth itself is in.

use std::path::PathBuf;

use super::{Error, Result};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mountpoint: PathBuf,
    /// The cgroup of the hierarchy that is mounted there (usually `/`).
    pub root: PathBuf,
    /// v1 controllers and `name=` options; empty for cgroup2.
    pub controllers: Vec<String>,
}

impl CgroupMount {
    pub fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }
}

/// Parses /proc/self/mountinfo for cgroup and cgroup2 mounts (the first mount of each hierarchy wins).
pub fn cgroup_mounts() -> Result<Vec<CgroupMount>> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read(path).map_err(|source| Error::Io {
        op: "read",
        path: path.into(),
        source,
    })?;
    Ok(cgroup_mounts_in(&text))
}

pub fn cgroup_mounts_in(text: &[u8]) -> Vec<CgroupMount> {
    let mut out: Vec<CgroupMount> = Vec::new();
    for mount in crate::mountinfo::parse(text) {
        let controllers: Vec<String> = match mount.fstype.as_str() {
            "cgroup2" => Vec::new(),
            "cgroup" => mount
                .super_options
                .split(',')
                .filter(|o| {
                    !matches!(*o, "rw" | "ro" | "xattr" | "noprefix" | "clone_children")
                        && !o.starts_with("release_agent=")
                })
                .map(str::to_string)
                .collect(),
            _ => continue,
        };
        let m = CgroupMount {
            mountpoint: mount.mount_point,
            root: mount.root,
            controllers,
        };
        let dup = out
            .iter()
            .any(|o| o.controllers == m.controllers && o.is_v2() == m.is_v2());
        if !dup {
            out.push(m);
        }
    }
    out
}

/// berth's own cgroups: (controllers of the hierarchy, path), from /proc/self/cgroup. cgroup2 has no controllers.
pub fn own_cgroups() -> Result<Vec<(Vec<String>, PathBuf)>> {
    let path = "/proc/self/cgroup";
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        op: "read",
        path: path.into(),
        source,
    })?;
    Ok(parse_proc_cgroup(&text))
}

pub fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            let ctrls: Vec<String> = if ctrls.is_empty() {
                Vec::new()
            } else {
                ctrls.split(',').map(str::to_string).collect()
            };
            Some((ctrls, PathBuf::from(path)))
        })
        .collect()
}

/// The directory of berth's own cgroup in the hierarchy mounted at `m`.
pub fn own_dir(m: &CgroupMount, own: &[(Vec<String>, PathBuf)]) -> Option<PathBuf> {
    let mut want = m.controllers.clone();
    want.sort();
    let (_, path) = own.iter().find(|(c, _)| {
        let mut c = c.clone();
        c.sort();
        c == want
    })?;
    // Inside a cgroup namespace or a bind-mounted subtree the mount root is a prefix of our path.
    let rel = path.strip_prefix(&m.root).unwrap_or(path);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    Some(m.mountpoint.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn hybrid_mounts_are_found() {
        let m = cgroup_mounts_in(HYBRID.as_bytes());
        assert_eq!(m.len(), 4);
        assert!(m[0].is_v2());
        assert_eq!(m[1].controllers, vec!["memory"]);
        assert_eq!(m[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[3].controllers, vec!["name=systemd"]);
    }

    #[test]
    fn own_dir_matches_controllers_in_any_order() {
        let m = cgroup_mounts_in(HYBRID.as_bytes());
        let own = parse_proc_cgroup("4:memory:/a/b\n2:cpuacct,cpu:/\n0::/u\n");
        assert_eq!(
            own_dir(&m[1], &own),
            Some(PathBuf::from("/sys/fs/cgroup/memory/a/b"))
        );
        assert_eq!(
            own_dir(&m[2], &own),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/"))
        );
        assert_eq!(
            own_dir(&m[0], &own),
            Some(PathBuf::from("/sys/fs/cgroup/unified/u"))
        );
        assert_eq!(own_dir(&m[3], &own), None);
    }

    #[test]
    fn non_ascii_mount_points_are_kept() {
        let text = "31 30 0:27 / /sys/fs/cgroup/m\u{e9}moire\\040x rw - cgroup cgroup rw,memory\n";
        let m = cgroup_mounts_in(text.as_bytes());
        assert_eq!(
            m[0].mountpoint,
            PathBuf::from("/sys/fs/cgroup/m\u{e9}moire x")
        );
        let own = parse_proc_cgroup("4:memory:/caf\u{e9}\n");
        assert_eq!(
            own_dir(&m[0], &own),
            Some(PathBuf::from("/sys/fs/cgroup/m\u{e9}moire x/caf\u{e9}"))
        );
    }
}
