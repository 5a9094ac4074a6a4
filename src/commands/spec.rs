use std::io::Write;

use anyhow::{bail, Context, Result};

use crate::cli::SpecArgs;

pub fn run(a: &SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    // As runc: a cgroup namespace only where /sys/fs/cgroup is cgroup2 (a hybrid host's v1 hierarchies would not
    // be rooted at the container's cgroup inside it anyway).
    let pure_v2 = crate::sys::is_cgroup2(std::path::Path::new("/sys/fs/cgroup")).unwrap_or(false);
    let text = crate::config::default_config(
        a.rootless,
        pure_v2,
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("File {} exists. Remove it first", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
    };
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
