//! v1 blkio controller: weights (CFQ's blkio.weight, or BFQ's blkio.bfq.weight on kernels without CFQ), per-device
//! weights and throttling.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::Manager;
use crate::cgroups::stats::{parse_blkio_v1, Stats};
use crate::cgroups::{fs, Error, Result};

pub fn apply(m: &Manager, b: &LinuxBlockIo) -> Result<()> {
    let dir = m.controller("blkio.throttle.read_bps_device", "blockIO", "blkio")?;
    let missing = |what: &str| Error::NotAvailable {
        resource: "blockIO",
        reason: format!("{what} is not supported by this kernel's I/O schedulers"),
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if !fs::write_if_exists(dir, "blkio.weight", &w.to_string())?
            && !fs::write_if_exists(dir, "blkio.bfq.weight", &w.to_string())?
        {
            return Err(missing("weight"));
        }
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        if !fs::write_if_exists(dir, "blkio.leaf_weight", &w.to_string())? {
            return Err(missing("leafWeight"));
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            let written = fs::write_if_exists(dir, "blkio.weight_device", &line).and_then(|cfq| {
                Ok(cfq || fs::write_if_exists(dir, "blkio.bfq.weight_device", &line)?)
            });
            match written {
                Ok(true) => {}
                Ok(false) => return Err(missing("weightDevice")),
                Err(e) if fs::is_unsupported(&e) => {
                    return Err(Error::NotAvailable {
                        resource: "blockIO.weightDevice",
                        reason: format!(
                            "{e}: device {}:{} is scheduled by neither CFQ nor BFQ",
                            d.major(),
                            d.minor()
                        ),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(w) = d.leaf_weight() {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            if !fs::write_if_exists(dir, "blkio.leaf_weight_device", &line)? {
                return Err(missing("weightDevice.leafWeight"));
            }
        }
    }
    let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (list, file) in throttles {
        for t in list.iter().flatten() {
            fs::write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

pub fn stats(m: &Manager, s: &mut Stats) {
    let Some(dir) = m.dir_with("blkio.throttle.io_service_bytes_recursive") else {
        return;
    };
    let read = |f: &str| parse_blkio_v1(&fs::read(dir, f).unwrap_or_default());
    s.blkio.io_service_bytes_recursive = read("blkio.throttle.io_service_bytes_recursive");
    s.blkio.io_serviced_recursive = read("blkio.throttle.io_serviced_recursive");
}
