//! The rdma controller's rdma.max (the same file on v1 and v2).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::LinuxRdma;

use super::Manager;
use crate::cgroups::{fs, Result};

/// One rdma.max line per device, "mlx5_0 hca_handle=2 hca_object=2000", in device order.
pub fn lines(limits: &HashMap<String, LinuxRdma>) -> Vec<String> {
    let mut devs: Vec<_> = limits.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    devs.into_iter()
        .filter_map(|(dev, l)| {
            let mut line = dev.clone();
            if let Some(h) = l.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            (line.len() > dev.len()).then_some(line)
        })
        .collect()
}

pub fn write(dir: &Path, limits: &HashMap<String, LinuxRdma>) -> Result<()> {
    for line in lines(limits) {
        fs::write(dir, "rdma.max", &line)?;
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

    #[test]
    fn rdma_lines() {
        let a: LinuxRdma = serde_json::from_str(r#"{"hcaHandles":3,"hcaObjects":1000}"#).unwrap();
        let b: LinuxRdma = serde_json::from_str(r#"{"hcaObjects":7}"#).unwrap();
        let limits = HashMap::from([
            ("mlx5_1".to_string(), b),
            ("mlx5_0".to_string(), a),
            ("none".to_string(), LinuxRdma::default()),
        ]);
        assert_eq!(
            lines(&limits),
            ["mlx5_0 hca_handle=3 hca_object=1000", "mlx5_1 hca_object=7"]
        );
    }
}
