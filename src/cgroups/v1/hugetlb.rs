//! v1 hugetlb controller: hugetlb.<size>.limit_in_bytes.

use oci_spec::runtime::LinuxHugepageLimit;

use super::Manager;
use crate::cgroups::convert::v1_limit;
use crate::cgroups::stats::{Hugetlb, Stats};
use crate::cgroups::{fs, Error, Result};

pub fn apply(m: &Manager, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let size = l.page_size(); // a size like 2MB (checked at load)
        let file = format!("hugetlb.{size}.limit_in_bytes");
        let dir = m.dir_with(&file).ok_or_else(|| Error::NotAvailable {
            resource: "hugepageLimits",
            reason: format!("no hugetlb controller with {size} pages on this host ({file})"),
        })?;
        fs::write(dir, &file, &v1_limit(l.limit()))?;
    }
    Ok(())
}

pub fn stats(m: &Manager, s: &mut Stats) {
    let Some(dir) = m
        .dir_with("hugetlb.2MB.limit_in_bytes")
        .or_else(|| m.dir_with("hugetlb.1GB.limit_in_bytes"))
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(".usage_in_bytes"))
        else {
            continue;
        };
        s.hugetlb.insert(
            size.to_string(),
            Hugetlb {
                usage: fs::read_u64(dir, &name),
                max: fs::read_u64(dir, &format!("hugetlb.{size}.max_usage_in_bytes")),
                failcnt: fs::read_u64(dir, &format!("hugetlb.{size}.failcnt")),
            },
        );
    }
}
