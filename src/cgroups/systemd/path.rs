//! `linux.cgroupsPath` in systemd form, `slice:prefix:name`, read as runc reads it.

use std::path::PathBuf;

use super::super::{Error, Result};

/// Where the container goes: the unit and its slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPath {
    /// The parent slice, e.g. `system.slice` (an empty slice field means that one).
    pub slice: String,
    /// `<prefix>-<name>.scope`, or `name` itself when it ends in `.slice`.
    pub unit: String,
}

impl UnitPath {
    /// Parses `slice:prefix:name`; no cgroupsPath at all means `:berth:<id>` (runc's `:runc:<id>`). An empty
    /// slice is `system.slice`.
    #[cfg(test)]
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<UnitPath> {
        Self::parse_in(cgroups_path, id, "system.slice")
    }

    /// [`UnitPath::parse`] with `default_slice` for an empty slice (a rootless caller's is `user.slice`, as runc's).
    pub fn parse_in(cgroups_path: Option<&str>, id: &str, default_slice: &str) -> Result<UnitPath> {
        let default = format!(":berth:{id}");
        let raw = match cgroups_path {
            Some(p) if !p.is_empty() => p,
            _ => default.as_str(),
        };
        let bad = |reason: &'static str| Error::BadPath {
            path: PathBuf::from(raw),
            reason,
        };
        let parts: Vec<&str> = raw.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(bad(
                "with --systemd-cgroup it must have the form slice:prefix:name (e.g. system.slice:berth:<id>)",
            ));
        };
        if name.is_empty() {
            return Err(bad("the name part of slice:prefix:name is empty"));
        }
        if [slice, prefix, name].iter().any(|p| p.contains('/')) {
            return Err(bad("systemd unit and slice names cannot contain '/'"));
        }
        let slice = if slice.is_empty() {
            default_slice
        } else {
            slice
        };
        expand_slice(slice)
            .map_err(|_| bad("the slice must be a systemd slice name such as a-b.slice"))?;
        let unit = if name.ends_with(".slice") {
            expand_slice(name).map_err(|_| bad("the name is not a valid slice name"))?;
            name.to_string()
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(UnitPath {
            slice: slice.to_string(),
            unit,
        })
    }

    /// The unit's cgroup below the hierarchy root: the expanded slice, then the unit (as runc joins them).
    pub fn cgroup(&self) -> String {
        let slice = expand_slice(&self.slice).expect("checked by parse");
        format!("{}/{}", slice.trim_end_matches('/'), self.unit)
    }
}

/// The unit's cgroup below the cgroup of the manager that runs it: `manager_cg` is the manager's `ControlGroup`
/// (empty or `/` for the system manager, `/user.slice/user-1000.slice/user@1000.service` for a user's), `unit_cg` is
/// [`UnitPath::cgroup`]. A manager's cgroup that is not absolute or climbs (`..`) is refused: it would place the
/// container elsewhere.
pub fn under_manager(manager_cg: &str, unit_cg: &str) -> std::result::Result<String, ()> {
    let manager_cg = if manager_cg.is_empty() {
        "/"
    } else {
        manager_cg
    };
    if !manager_cg.starts_with('/') || manager_cg.split('/').any(|c| c == ".." || c == ".") {
        return Err(());
    }
    let base = manager_cg.trim_end_matches('/');
    Ok(format!("{base}{unit_cg}"))
}

/// `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root. Empty components (`a--b.slice`,
/// `-a.slice`) and slashes are refused.
pub fn expand_slice(slice: &str) -> std::result::Result<String, ()> {
    let stem = slice.strip_suffix(".slice").ok_or(())?;
    if slice.contains('/') {
        return Err(());
    }
    if stem == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in stem.split('-') {
        if comp.is_empty() {
            return Err(());
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(comp);
        path.push_str(".slice");
        prefix.push_str(comp);
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_nested_slices() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(
            expand_slice("kubepods-burstable-pod1234.slice").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            ".slice",
            "a.scope",
            "a/b.slice",
            "slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_runc_form() {
        let u = UnitPath::parse(Some("system.slice:berth:abc"), "x").unwrap();
        assert_eq!(u.unit, "berth-abc.scope");
        assert_eq!(u.cgroup(), "/system.slice/berth-abc.scope");

        let u = UnitPath::parse(Some(":cri-containerd:abc"), "x").unwrap();
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.cgroup(), "/system.slice/cri-containerd-abc.scope");

        let u = UnitPath::parse(
            Some("kubepods-besteffort-pod9.slice:cri-containerd:c1"),
            "x",
        )
        .unwrap();
        assert_eq!(
            u.cgroup(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/cri-containerd-c1.scope"
        );

        // a name ending in .slice is the unit itself (runc joins it under the given slice)
        let u = UnitPath::parse(Some("a.slice::a-b.slice"), "x").unwrap();
        assert_eq!(u.unit, "a-b.slice");
        assert_eq!(u.cgroup(), "/a.slice/a-b.slice");

        let u = UnitPath::parse(Some("-.slice:p:n"), "x").unwrap();
        assert_eq!(u.cgroup(), "/p-n.scope");

        let u = UnitPath::parse(None, "ctr1").unwrap();
        assert_eq!(u.cgroup(), "/system.slice/berth-ctr1.scope");
    }

    #[test]
    fn rootless_default_slice_is_user_slice() {
        let u = UnitPath::parse_in(None, "c1", "user.slice").unwrap();
        assert_eq!(u.slice, "user.slice");
        assert_eq!(u.cgroup(), "/user.slice/berth-c1.scope");
        let u = UnitPath::parse_in(Some(":p:n"), "x", "user.slice").unwrap();
        assert_eq!(u.cgroup(), "/user.slice/p-n.scope");
        // an explicit slice is kept
        let u = UnitPath::parse_in(Some("app.slice:p:n"), "x", "user.slice").unwrap();
        assert_eq!(u.cgroup(), "/app.slice/p-n.scope");
    }

    #[test]
    fn unit_cgroup_goes_below_the_managers() {
        assert_eq!(
            under_manager(
                "/user.slice/user-1000.slice/user@1000.service",
                "/user.slice/berth-c1.scope"
            )
            .unwrap(),
            "/user.slice/user-1000.slice/user@1000.service/user.slice/berth-c1.scope"
        );
        // the system manager's cgroup is the root: nothing changes
        assert_eq!(
            under_manager("/", "/system.slice/berth-c1.scope").unwrap(),
            "/system.slice/berth-c1.scope"
        );
        assert_eq!(
            under_manager("", "/system.slice/berth-c1.scope").unwrap(),
            "/system.slice/berth-c1.scope"
        );
        assert_eq!(
            under_manager("/a/", "/s.slice/u.scope").unwrap(),
            "/a/s.slice/u.scope"
        );
        for bad in ["rel/x", "/a/../b", "/a/./b"] {
            assert!(under_manager(bad, "/s.slice/u.scope").is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "/berth/abc",
            "a:b",
            "a:b:c:d",
            "system.slice:p:",
            "bad:p:n",
            "a--b.slice:p:n",
            "s.slice:p:x/y",
        ] {
            let e = UnitPath::parse(Some(bad), "x").unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
