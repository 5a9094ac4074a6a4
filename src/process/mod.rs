//! The container's init: everything that happens in the cloned child, from the sync with the parent to execve.

pub mod affinity;
pub mod attrs;
pub mod caps;
pub mod exec;
pub mod exec_into;
pub mod exec_stub;
pub mod hooks;
pub mod identity;
pub mod init;
pub mod ioprio;
pub mod mempolicy;
pub mod personality;
pub mod rlimits;
pub mod sched;
pub mod seccomp;
pub mod setup;
pub mod sync;
pub mod tty;
