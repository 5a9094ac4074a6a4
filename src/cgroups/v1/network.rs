//! v1 net_cls and net_prio controllers.

use oci_spec::runtime::LinuxNetwork;

use super::Manager;
use crate::cgroups::{fs, Result};

pub fn apply(m: &Manager, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        let dir = m.controller("net_cls.classid", "network.classID", "net_cls")?;
        fs::write(dir, "net_cls.classid", &id.to_string())?;
    }
    let prios = n.priorities().as_deref().unwrap_or_default();
    if !prios.is_empty() {
        let dir = m.controller("net_prio.ifpriomap", "network.priorities", "net_prio")?;
        for p in prios {
            fs::write(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}
