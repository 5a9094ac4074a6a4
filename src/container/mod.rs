//! The container lifecycle: state files and locking, and the create/start/kill/delete orchestration that puts the
//! spec, namespace, cgroup, rootfs and process pieces together.

pub mod control;
pub mod create;
pub mod exec;
pub mod foreground;
pub mod lifecycle;
pub mod pidfd_socket;
pub mod signal;
pub mod state;

pub use create::{create, CreateOptions};
pub use lifecycle::{delete, kill, start, status_of};
