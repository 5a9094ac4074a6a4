use anyhow::{Context, Result};

use crate::cli::{Cli, ExecArgs};
use crate::container::exec::{self, ExecOptions, Overrides};

pub fn run(cli: &Cli, a: &ExecArgs) -> Result<i32> {
    let ctx = || format!("container {}", a.id);
    let preserve_fds = super::check_preserve_fds(a.preserve_fds).with_context(ctx)?;
    let opts = ExecOptions {
        process_file: a.process.clone(),
        overrides: Overrides {
            args: a.command.clone(),
            cwd: a.cwd.clone(),
            env: a.env.clone(),
            tty: a.tty,
            user: a.user.clone(),
            additional_gids: a.additional_gids.clone(),
            caps: a.cap.clone(),
            no_new_privs: a.no_new_privs,
            apparmor: a.apparmor.clone(),
            process_label: a.process_label.clone(),
        },
        console_socket: a.console_socket.clone(),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        preserve_fds,
    };
    let dir = exec::existing(&cli.root, &a.id).with_context(ctx)?;
    exec::exec(&dir, &opts).with_context(ctx)
}
