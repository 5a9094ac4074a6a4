//! v2 hugetlb controller: hugetlb.<size>.max.

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use crate::cgroups::convert::v2_limit;
use crate::cgroups::stats::{Hugetlb, Stats};
use crate::cgroups::{fs, Error, Result};

pub fn apply(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let size = l.page_size(); // a size like 2MB (checked at load)
        let file = format!("hugetlb.{size}.max");
        if !dir.join(&file).exists() {
            return Err(Error::NotAvailable {
                resource: "hugepageLimits",
                reason: format!(
                    "{} does not exist: no hugetlb controller with {size} pages here",
                    dir.join(&file).display()
                ),
            });
        }
        fs::write(dir, &file, &v2_limit(l.limit()))?;
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut Stats) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(".current"))
        else {
            continue;
        };
        let events = fs::read_flat_keyed(dir, &format!("hugetlb.{size}.events"));
        s.hugetlb.insert(
            size.to_string(),
            Hugetlb {
                usage: fs::read_u64(dir, &name),
                max: fs::read_u64(dir, &format!("hugetlb.{size}.max")),
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
}
