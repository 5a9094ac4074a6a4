//! The rdma controller's rdma.max (the same file on v1 and v2).
//!
//! rdma.max lists every RDMA device the kernel has registered, one line each ("mlx5_0 hca_handle=2 hca_object=max");
//! writing "DEV hca_handle=N" sets that device's limit and leaves the other one as it was.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::LinuxRdma;

use super::Manager;
use crate::cgroups::{fs, Error, Result};

/// One rdma.max line per device that has a limit, "mlx5_0 hca_handle=2 hca_object=2000", in device order (a limit
/// the kernel cannot take was refused at load).
pub fn lines(limits: &HashMap<String, LinuxRdma>) -> Vec<(&str, String)> {
    let mut devs: Vec<_> = limits.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (dev, l) in devs {
        let mut line = dev.clone();
        for (key, value) in [
            ("hca_handle", l.hca_handles()),
            ("hca_object", l.hca_objects()),
        ] {
            let Some(v) = value else { continue };
            line.push_str(&format!(" {key}={v}"));
        }
        if line.len() > dev.len() {
            out.push((dev.as_str(), line));
        }
    }
    out
}

/// The device names in the text of an rdma.max file.
fn devices(rdma_max: &str) -> Vec<&str> {
    rdma_max
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

fn no_device(dev: &str, known: &[&str]) -> Error {
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    Error::NotAvailable {
        resource: "rdma",
        reason: format!("no RDMA device {dev:?} on this host (its RDMA devices: {known})"),
    }
}

/// Writes the limits into `dir`'s rdma.max. Every device is checked against the ones the kernel lists before
/// anything is written, so that an unknown name changes nothing.
pub fn write(dir: &Path, limits: &HashMap<String, LinuxRdma>) -> Result<()> {
    let lines = lines(limits);
    if lines.is_empty() {
        return Ok(());
    }
    let current = fs::read(dir, "rdma.max")?;
    let known = devices(&current);
    if let Some((dev, _)) = lines.iter().find(|(dev, _)| !known.contains(dev)) {
        return Err(no_device(dev, &known));
    }
    for (dev, line) in &lines {
        match fs::write(dir, "rdma.max", line) {
            // The device went away meanwhile.
            Err(Error::Write { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Err(no_device(dev, &known));
            }
            written => written?,
        }
    }
    Ok(())
}

pub fn apply(m: &Manager, limits: &HashMap<String, LinuxRdma>) -> Result<()> {
    if lines(limits).is_empty() {
        return Ok(());
    }
    write(m.controller("rdma.max", "rdma", "rdma")?, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdma(json: &str) -> LinuxRdma {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rdma_lines() {
        let limits = HashMap::from([
            ("mlx5_1".to_string(), rdma(r#"{"hcaObjects":7}"#)),
            (
                "mlx5_0".to_string(),
                rdma(r#"{"hcaHandles":3,"hcaObjects":1000}"#),
            ),
            ("none".to_string(), LinuxRdma::default()),
            ("rxe0".to_string(), rdma(r#"{"hcaHandles":2147483647}"#)),
        ]);
        assert_eq!(
            lines(&limits),
            [
                ("mlx5_0", "mlx5_0 hca_handle=3 hca_object=1000".to_string()),
                ("mlx5_1", "mlx5_1 hca_object=7".to_string()),
                ("rxe0", "rxe0 hca_handle=2147483647".to_string()),
            ]
        );
    }

    #[test]
    fn devices_of_rdma_max() {
        let text = "mlx5_0 hca_handle=max hca_object=max\nrxe0 hca_handle=2 hca_object=100\n";
        assert_eq!(devices(text), ["mlx5_0", "rxe0"]);
        assert_eq!(devices(""), Vec::<&str>::new());
    }

    #[test]
    fn an_unknown_device_writes_nothing() {
        let dir = std::env::temp_dir().join(format!("berth-rdma-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let before = "rxe0 hca_handle=max hca_object=max\n";
        std::fs::write(dir.join("rdma.max"), before).unwrap();
        let limits = HashMap::from([
            ("rxe0".to_string(), rdma(r#"{"hcaHandles":1}"#)),
            ("rxe1 hca_handle=1".to_string(), rdma(r#"{"hcaHandles":1}"#)),
        ]);
        let err = write(&dir, &limits).unwrap_err().to_string();
        let after = std::fs::read_to_string(dir.join("rdma.max")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            err,
            "linux.resources.rdma: no RDMA device \"rxe1 hca_handle=1\" on this host (its RDMA devices: rxe0)"
        );
        assert_eq!(after, before);
    }
}
