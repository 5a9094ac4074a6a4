//! v2 io controller. Weights, as runc does them: the spec's blkio weight (10..1000) goes to io.bfq.weight unchanged
//! when BFQ is loaded (same scale), else to io.weight (iocost) converted to 1..10000. A per-device weight goes to
//! BFQ too when BFQ schedules that device, else to io.weight, which takes it where iocost is enabled for the device
//! (io.cost.qos); runc drops it silently there, berth says so. Throttles go to io.max, one line per device with all
//! its limits. leafWeight has no v2 equivalent and is ignored, as runc does.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::need;
use crate::cgroups::convert::blkio_weight_to_io_weight;
use crate::cgroups::stats::{parse_io_stat, Stats};
use crate::cgroups::{fs, Error, Result};

/// A weight to set: the default one (`dev` None) or a device's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Weight {
    dev: Option<(i64, i64)>,
    /// On the spec's (v1, BFQ) scale, 10..1000.
    value: u16,
}

impl Weight {
    fn resource(&self) -> &'static str {
        match self.dev {
            None => "blockIO.weight",
            Some(_) => "blockIO.weightDevice",
        }
    }

    /// The line for io.bfq.weight: BFQ's scale is the spec's. The default weight is a bare number, the one form
    /// every kernel with io.bfq.weight reads (per-device lines came in 5.4).
    fn bfq_line(&self) -> String {
        match self.dev {
            None => self.value.to_string(),
            Some((major, minor)) => format!("{major}:{minor} {}", self.value),
        }
    }

    /// The line for io.weight, on iocost's 1..10000 scale.
    fn io_weight_line(&self) -> String {
        let w = blkio_weight_to_io_weight(u64::from(self.value));
        match self.dev {
            None => format!("default {w}"),
            Some((major, minor)) => format!("{major}:{minor} {w}"),
        }
    }
}

/// The weights the config sets, default first; 0 (or no value) means "not set" (values outside the spec's 10..1000
/// were refused at load).
fn weights(b: &LinuxBlockIo) -> Vec<Weight> {
    let default = b
        .weight()
        .filter(|w| *w != 0)
        .map(|value| Weight { dev: None, value });
    let devices = b.weight_device().iter().flatten().filter_map(|d| {
        d.weight().filter(|w| *w != 0).map(|value| Weight {
            dev: Some((d.major(), d.minor())),
            value,
        })
    });
    default.into_iter().chain(devices).collect()
}

/// The io.max line of each throttled device, in the order the devices first appear: all of a device's limits in
/// one write, so they apply together. A rate of 0 means "no limit", as on v1; io.max spells that "max" (it refuses
/// 0). A device listed twice in one list keeps the later rate, as successive writes would.
fn io_max_lines(b: &LinuxBlockIo) -> Vec<String> {
    type Limits = [Option<u64>; 4];
    const KEYS: [&str; 4] = ["rbps", "wbps", "riops", "wiops"];
    let lists: [&Option<Vec<LinuxThrottleDevice>>; 4] = [
        b.throttle_read_bps_device(),
        b.throttle_write_bps_device(),
        b.throttle_read_iops_device(),
        b.throttle_write_iops_device(),
    ];
    let mut devices: Vec<((i64, i64), Limits)> = Vec::new();
    for (key, list) in lists.iter().enumerate() {
        for t in list.iter().flatten() {
            let dev = (t.major(), t.minor());
            let i = match devices.iter().position(|(d, _)| *d == dev) {
                Some(i) => i,
                None => {
                    devices.push((dev, [None; 4]));
                    devices.len() - 1
                }
            };
            devices[i].1[key] = Some(t.rate());
        }
    }
    devices
        .iter()
        .map(|((major, minor), limits)| {
            let mut line = format!("{major}:{minor}");
            for (key, rate) in KEYS.iter().zip(limits) {
                match rate {
                    Some(0) => line.push_str(&format!(" {key}=max")),
                    Some(r) => line.push_str(&format!(" {key}={r}")),
                    None => {}
                }
            }
            line
        })
        .collect()
}

pub fn apply(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let weights = weights(b);
    let io_max = io_max_lines(b);
    let bfq = dir.join("io.bfq.weight").exists();
    for w in &weights {
        if bfq {
            match fs::write(dir, "io.bfq.weight", &w.bfq_line()) {
                Ok(()) => continue,
                // BFQ is loaded but does not schedule this device: iocost may.
                Err(e) if w.dev.is_some() && fs::is_unsupported(&e) => {}
                Err(e) => return Err(e),
            }
        }
        need(dir, "io.weight", w.resource())?;
        match (fs::write(dir, "io.weight", &w.io_weight_line()), w.dev) {
            (Err(e), Some((major, minor))) if fs::is_unsupported(&e) => {
                return Err(Error::NotAvailable {
                    resource: w.resource(),
                    reason: format!(
                        "{e}: device {major}:{minor} has neither BFQ as its scheduler nor iocost enabled in \
                         io.cost.qos"
                    ),
                });
            }
            (written, _) => written?,
        }
    }
    if !io_max.is_empty() {
        need(dir, "io.max", "blockIO.throttle")?;
        for line in &io_max {
            fs::write(dir, "io.max", line)?;
        }
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut Stats) {
    let (bytes, ios) = parse_io_stat(&fs::read(dir, "io.stat").unwrap_or_default());
    s.blkio.io_service_bytes_recursive = bytes;
    s.blkio.io_serviced_recursive = ios;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_io(json: serde_json::Value) -> LinuxBlockIo {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn weights_convert_like_runc() {
        let b = block_io(serde_json::json!({
            "weight": 300,
            "leafWeight": 200,
            "weightDevice": [
                {"major": 8, "minor": 0, "weight": 500, "leafWeight": 100},
                {"major": 8, "minor": 16, "leafWeight": 100},
                {"major": 8, "minor": 32, "weight": 10},
                {"major": 8, "minor": 48, "weight": 1000},
            ],
        }));
        let w = weights(&b);
        let bfq: Vec<String> = w.iter().map(Weight::bfq_line).collect();
        let io: Vec<String> = w.iter().map(Weight::io_weight_line).collect();
        // leafWeight (default and per device) has no v2 file; a device without a weight sets nothing.
        assert_eq!(bfq, ["300", "8:0 500", "8:32 10", "8:48 1000"]);
        // 1 + (w - 10) * 9999 / 990: the ends map onto the ends, 300 → 2930, 500 → 4950.
        assert_eq!(io, ["default 2930", "8:0 4950", "8:32 1", "8:48 10000"]);
    }

    #[test]
    fn zero_weights_are_unset() {
        let b = block_io(serde_json::json!({
            "weight": 0,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 0}],
        }));
        assert_eq!(weights(&b), []);
        assert_eq!(weights(&block_io(serde_json::json!({}))), []);
    }

    #[test]
    fn throttles_make_one_io_max_line_per_device() {
        let b = block_io(serde_json::json!({
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}],
            "throttleReadBpsDevice": [
                {"major": 8, "minor": 0, "rate": 1048576},
                {"major": 8, "minor": 16, "rate": 0},
            ],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
            "throttleReadIOPSDevice": [
                {"major": 8, "minor": 16, "rate": 7},
                {"major": 8, "minor": 0, "rate": 100},
                {"major": 8, "minor": 16, "rate": 9},
            ],
        }));
        assert_eq!(
            io_max_lines(&b),
            [
                "8:0 rbps=1048576 wbps=2097152 riops=100 wiops=200",
                "8:16 rbps=max riops=9",
            ]
        );
        assert!(io_max_lines(&block_io(serde_json::json!({"weight": 500}))).is_empty());
    }
}
