use anyhow::{Context, Result};

use crate::cli::{Cli, ExecArgs};
use crate::container::exec::{self, ExecOptions, Overrides};

pub fn run(cli: &Cli, a: &ExecArgs) -> Result<i32> {
    let ctx = || format!("container {}", a.id);
    let preserve_fds = match super::check_preserve_fds(a.preserve_fds).with_context(ctx) {
        Ok(n) => n,
        Err(e) => {
            crate::logging::error(&crate::logging::chain(&e));
            return Ok(EXEC_FAILED);
        }
    };
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
        ignore_paused: a.ignore_paused,
    };
    let result = exec::existing(&cli.root, &a.id)
        .and_then(|dir| exec::exec(&dir, &opts))
        .with_context(ctx);
    match result {
        Ok(code) => Ok(code),
        // runc's exec exits 255 when it could not run the process (126/127 are left to the program's shell).
        Err(e) => {
            crate::logging::error(&crate::logging::chain(&e));
            Ok(EXEC_FAILED)
        }
    }
}

/// The status of an `exec` that failed before the process ran, as runc's.
const EXEC_FAILED: i32 = 255;
