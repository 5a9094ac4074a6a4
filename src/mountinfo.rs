//! One parser for /proc/<pid>/mountinfo, shared by the rootfs (which mount holds a path, what lies below one) and
//! the cgroup managers (where each hierarchy is mounted). A leaf: it depends on nothing else in berth.
//!
//! Paths are kept as bytes: the kernel writes them raw except for space, tab, newline and backslash, which it
//! escapes as `\ooo`, so a non-ASCII (or non-UTF-8) mount point comes back exactly as it is on disk.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the filesystem that is mounted (field 4; `/` unless a subtree is bind-mounted).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Optional fields such as `shared:N` and `master:N`.
    pub optional: Vec<String>,
    pub fstype: String,
    /// Per-superblock options (after the separator), e.g. the controllers of a cgroup v1 hierarchy.
    pub super_options: String,
}

impl Mount {
    /// Its mount events reach its peers.
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("shared:"))
    }
}

/// Parses mountinfo text, in file order (later entries are mounted on top of earlier ones). Lines that are not
/// mountinfo are skipped.
pub fn parse(text: &[u8]) -> Vec<Mount> {
    text.split(|b| *b == b'\n').filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<Mount> {
    let sep = line.windows(3).position(|w| w == b" - ")?;
    let (pre, post) = (&line[..sep], &line[sep + 3..]);
    let pre: Vec<&[u8]> = pre.split(|b| *b == b' ').collect();
    let post: Vec<&[u8]> = post.split(|b| *b == b' ').collect();
    if pre.len() < 6 || post.len() < 3 {
        return None;
    }
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    Some(Mount {
        root: unescape(pre[3]),
        mount_point: unescape(pre[4]),
        optional: pre[6..].iter().map(|f| text(f)).collect(),
        fstype: text(post[0]),
        super_options: text(post[2]),
    })
}

/// Reads /proc/self/mountinfo.
pub fn read_self() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read("/proc/self/mountinfo")?))
}

/// Undoes the kernel's `\ooo` escapes; every other byte is kept as it is.
fn unescape(field: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).filter(|d| {
            field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_escapes_and_sharing() {
        let text = b"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
42 41 0:39 /sub /tmp/my\\040dir\\134x rw shared:7 master:3 - tmpfs tmpfs rw,size=4k\n\
not a mountinfo line\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert!(m[0].is_shared());
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[1].root, PathBuf::from("/sub"));
        assert_eq!(m[1].mount_point, PathBuf::from("/tmp/my dir\\x"));
        assert_eq!(m[1].optional, vec!["shared:7", "master:3"]);
        assert_eq!(m[1].super_options, "rw,size=4k");
    }

    #[test]
    fn non_ascii_and_non_utf8_paths_come_back_byte_for_byte() {
        let mut line =
            b"31 30 0:27 / /sys/fs/cgroup/m\xc3\xa9moire/\xff rw - cgroup cgroup rw,memory"
                .to_vec();
        line.push(b'\n');
        let m = parse(&line);
        let want = PathBuf::from(OsString::from_vec(
            b"/sys/fs/cgroup/m\xc3\xa9moire/\xff".to_vec(),
        ));
        assert_eq!(m[0].mount_point, want);
    }

    #[test]
    fn a_backslash_that_is_no_escape_stays() {
        assert_eq!(unescape(b"/a\\9b\\"), PathBuf::from("/a\\9b\\"));
        assert_eq!(unescape(b"/a\\011b"), PathBuf::from("/a\tb"));
    }
}
