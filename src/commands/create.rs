use anyhow::{Context, Result};

use crate::cli::{Cli, CreateArgs};
use crate::container::{self, CreateOptions};

pub fn options(cli: &Cli, a: &CreateArgs) -> Result<CreateOptions> {
    let preserve_fds =
        super::check_preserve_fds(a.preserve_fds).with_context(|| format!("container {}", a.id))?;
    Ok(CreateOptions {
        root: cli.root.clone(),
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds,
        foreground: false,
        systemd_cgroup: cli.systemd_cgroup,
        rootless_cgroups: super::rootless::Caller::current()
            .rootless_cgroups(cli.rootless.as_deref())?,
    })
}

pub fn run(cli: &Cli, a: &CreateArgs) -> Result<i32> {
    container::create(&options(cli, a)?).with_context(|| format!("container {}", a.id))?;
    Ok(0)
}
