//! The container's init: everything that happens in the cloned child, from the sync with the parent to execve.

pub mod caps;
pub mod exec;
pub mod exec_into;
pub mod exec_stub;
pub mod identity;
pub mod init;
pub mod lsm;
pub mod procfs;
pub mod rlimits;
pub mod seccomp;
pub mod setup;
pub mod sync;
pub mod tty;
