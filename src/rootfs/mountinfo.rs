//! What the rootfs asks of /proc/self/mountinfo (parsed by [`crate::mountinfo`]): which mount holds a path, and
//! which mounts lie under one.

use std::path::{Path, PathBuf};

/// One line of mountinfo, the parts the rootfs needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mount_point: PathBuf,
    /// Has a `shared:N` optional field (its mount events reach its peers).
    pub shared: bool,
    /// The directory of its filesystem that is mounted (`/` for a full mount).
    pub root: PathBuf,
    pub fstype: String,
}

fn read() -> std::io::Result<Vec<Entry>> {
    Ok(entries(crate::mountinfo::read_self()?))
}

/// In mountinfo order: later entries are mounted on top of earlier ones.
fn entries(mounts: Vec<crate::mountinfo::Mount>) -> Vec<Entry> {
    mounts
        .into_iter()
        .map(|m| Entry {
            shared: m.is_shared(),
            mount_point: m.mount_point,
            root: m.root,
            fstype: m.fstype,
        })
        .collect()
}

/// The topmost mount whose mount point is the longest prefix of `path` (canonicalized first).
pub fn mount_point_of(path: &Path) -> Option<Entry> {
    let path = path.canonicalize().ok()?;
    holder(&read().ok()?, &path)
}

fn holder(entries: &[Entry], path: &Path) -> Option<Entry> {
    let mut best: Option<&Entry> = None;
    for e in entries {
        if path.starts_with(&e.mount_point)
            && best.is_none_or(|b| {
                e.mount_point.components().count() >= b.mount_point.components().count()
            })
        {
            best = Some(e);
        }
    }
    best.cloned()
}

/// Every mount point at or below `dir`, in mountinfo order.
pub fn mounts_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(read()?
        .into_iter()
        .map(|e| e.mount_point)
        .filter(|m| m.starts_with(dir))
        .collect())
}

/// The mount points of full (root `/`) procfs and sysfs mounts, in mountinfo order.
pub fn full_proc_and_sys_mounts() -> std::io::Result<Vec<PathBuf>> {
    Ok(full_proc_and_sys(&read()?))
}

fn full_proc_and_sys(entries: &[Entry]) -> Vec<PathBuf> {
    entries
        .iter()
        .filter(|e| e.root == Path::new("/") && (e.fstype == "proc" || e.fstype == "sysfs"))
        .map(|e| e.mount_point.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:37 / /tmp rw,relatime - tmpfs tmpfs rw
41 40 0:38 / /tmp/b/root rw master:3 - tmpfs tmpfs rw
42 41 0:39 / /tmp/b/root/my\\040dir rw shared:7 master:3 - tmpfs tmpfs rw
43 40 0:40 / /tmp/b/rootfs2 rw - tmpfs tmpfs rw
44 27 0:5 / /proc rw - proc proc rw
45 27 0:6 / /sys rw - sysfs sysfs rw
46 40 0:5 /sys /tmp/psys rw - proc proc rw
";

    #[test]
    fn parses_escapes_and_sharing() {
        let e = entries(crate::mountinfo::parse(SAMPLE.as_bytes()));
        assert_eq!(e.len(), 8);
        assert_eq!(e[5].fstype, "proc");
        assert_eq!(e[7].root, PathBuf::from("/sys"));
        assert!(e[0].shared && !e[1].shared && !e[2].shared && e[3].shared);
        assert_eq!(e[3].mount_point, PathBuf::from("/tmp/b/root/my dir"));
    }

    #[test]
    fn finds_holder_and_mounts_below() {
        let e = entries(crate::mountinfo::parse(SAMPLE.as_bytes()));
        assert_eq!(
            holder(&e, Path::new("/tmp/b/x")).unwrap().mount_point,
            PathBuf::from("/tmp")
        );
        assert_eq!(
            holder(&e, Path::new("/etc")).unwrap().mount_point,
            PathBuf::from("/")
        );
        let under: Vec<_> = e
            .iter()
            .map(|e| e.mount_point.clone())
            .filter(|m| m.starts_with("/tmp/b/root"))
            .collect();
        // Path::starts_with works on components: /tmp/b/rootfs2 is not below /tmp/b/root.
        assert_eq!(under.len(), 2);
    }

    #[test]
    fn full_procfs_and_sysfs_only() {
        assert_eq!(
            full_proc_and_sys(&entries(crate::mountinfo::parse(SAMPLE.as_bytes()))),
            vec![PathBuf::from("/proc"), PathBuf::from("/sys")]
        );
    }
}
