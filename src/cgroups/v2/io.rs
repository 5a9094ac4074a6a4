//! v2 io controller: the spec's blkio weight goes to io.bfq.weight unchanged when BFQ is there (same 1..1000
//! range), else to io.weight converted (1..10000), as runc does; per-device weights likewise; throttling to io.max.
//! leafWeight has no v2 equivalent and is ignored, as runc does.

use std::path::Path;

use oci_spec::runtime::LinuxBlockIo;

use super::need;
use crate::cgroups::convert::blkio_weight_to_io_weight;
use crate::cgroups::stats::{parse_io_stat, Stats};
use crate::cgroups::{fs, Error, Result};

pub fn apply(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if b.weight()
        .is_some_and(|w| w != 0 && !(10..=1000).contains(&w))
    {
        return Err(Error::BadValue {
            resource: "blockIO.weight",
            reason: "must be in 10..1000".into(),
        });
    }
    let bfq = dir.join("io.bfq.weight").exists();
    let weight_file = |w: u16, dev: Option<(i64, i64)>| -> (&'static str, String) {
        let (file, value) = if bfq {
            ("io.bfq.weight", u64::from(w))
        } else {
            ("io.weight", blkio_weight_to_io_weight(u64::from(w)))
        };
        match dev {
            None if bfq => (file, value.to_string()),
            None => (file, format!("default {value}")),
            Some((ma, mi)) => (file, format!("{ma}:{mi} {value}")),
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if !bfq {
            need(dir, "io.weight", "blockIO.weight")?;
        }
        let (file, v) = weight_file(w, None);
        fs::write(dir, file, &v)?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            if !bfq {
                need(dir, "io.weight", "blockIO.weightDevice")?;
            }
            let (file, v) = weight_file(w, Some((d.major(), d.minor())));
            fs::write(dir, file, &v)?;
        }
    }
    let throttles = [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ];
    for (list, key) in throttles {
        for t in list.iter().flatten() {
            need(dir, "io.max", "blockIO.throttle")?;
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            fs::write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut Stats) {
    let (bytes, ios) = parse_io_stat(&fs::read(dir, "io.stat").unwrap_or_default());
    s.blkio.io_service_bytes_recursive = bytes;
    s.blkio.io_serviced_recursive = ios;
}
