//! process.ioPriority → ioprio_set(2) on the container's process; everything it forks inherits it.

use oci_spec::runtime::{IOPriorityClass, LinuxIOPriority};

/// IOPRIO_PRIO_VALUE(class, data) from linux/ioprio.h.
pub fn value(p: &LinuxIOPriority) -> u32 {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    (class << 13) | p.priority() as u32
}

/// Sets the I/O priority of the calling process. (runc passes IOPRIO_WHO_PROCESS too, despite the spec's
/// "process group": berth's init is not a group leader, and its group is the caller's.)
pub fn apply(p: &LinuxIOPriority) -> anyhow::Result<()> {
    crate::sys::ioprio_set_self(value(p)).map_err(|e| {
        anyhow::anyhow!(
            "process.ioPriority: ioprio_set {} {}: {}",
            p.class(),
            p.priority(),
            e.desc()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_and_level_pack_as_the_kernel_wants() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":5}"#).unwrap();
        assert_eq!(value(&p), (3 << 13) | 5);
    }
}
