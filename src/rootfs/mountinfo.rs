//! Just enough of /proc/self/mountinfo for the rootfs: which mount holds a path, and which mounts lie under one.

use std::path::{Path, PathBuf};

/// One line of mountinfo, the parts berth needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mount_point: PathBuf,
    /// Has a `shared:N` optional field (its mount events reach its peers).
    pub shared: bool,
    /// The directory of its filesystem that is mounted (`/` for a full mount).
    pub root: PathBuf,
    pub fstype: String,
}

/// Mount points are written with `\040`-style octal escapes for space, tab, newline and backslash.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Parses mountinfo text into entries, in file order (later entries are mounted on top of earlier ones).
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = pre.split(' ').collect();
        if fields.len() < 6 {
            continue;
        }
        out.push(Entry {
            mount_point: unescape(fields[4]),
            shared: fields[6..].iter().any(|f| f.starts_with("shared:")),
            root: unescape(fields[3]),
            fstype: post.split(' ').next().unwrap_or_default().to_string(),
        });
    }
    out
}

fn read() -> std::io::Result<Vec<Entry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
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
        let e = parse(SAMPLE);
        assert_eq!(e.len(), 8);
        assert_eq!(e[5].fstype, "proc");
        assert_eq!(e[7].root, PathBuf::from("/sys"));
        assert!(e[0].shared && !e[1].shared && !e[2].shared && e[3].shared);
        assert_eq!(e[3].mount_point, PathBuf::from("/tmp/b/root/my dir"));
    }

    #[test]
    fn finds_holder_and_mounts_below() {
        let e = parse(SAMPLE);
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
            full_proc_and_sys(&parse(SAMPLE)),
            vec![PathBuf::from("/proc"), PathBuf::from("/sys")]
        );
    }
}
