//! One file per subcommand: read the flags, call the library, print. Exit codes are runc's: 0, 1 on any error,
//! and for `run` the container's own status.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
pub mod sealed;
mod spec;
mod start;
mod state;
mod update;

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, Command};
use crate::container::state::StateDir;

pub fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.version {
        print!("{}", version_text());
        return Ok(0);
    }
    let Some(command) = &cli.command else {
        bail!("no command given; see berth --help");
    };
    crate::logging::debug(&format!("{command:?}"));
    match command {
        Command::Create(a) => create::run(cli, a),
        Command::Start(a) => start::run(cli, &a.id),
        Command::State(a) => state::run(cli, &a.id),
        Command::Kill(a) => kill::run(cli, a),
        Command::Delete(a) => delete::run(cli, a),
        Command::Run(a) => run::run(cli, a),
        Command::Spec(a) => spec::run(a),
        Command::List(a) => list::run(cli, a),
        Command::Exec(a) => exec::run(cli, a),
        Command::Features => features::run(),
        Command::Pause(a) => pause::pause(cli, &a.id),
        Command::Resume(a) => pause::resume(cli, &a.id),
        Command::Ps(a) => ps::run(cli, a),
        Command::Update(a) => update::run(cli, a),
        Command::Events(a) => events::run(cli, a),
    }
}

pub fn version_text() -> String {
    format!(
        "berth version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("BERTH_COMMIT").unwrap_or("unknown"),
        crate::spec::OCI_VERSION
    )
}

/// Checks `--preserve-fds N` against the descriptors berth was given: 3 .. 3+N-1 must lie within the caller's
/// descriptors (those open without close-on-exec: every descriptor berth opens itself is close-on-exec, and an
/// execve closed the caller's close-on-exec ones). Anything beyond would hand the container whatever berth opens
/// there later. Call it before berth opens anything that could be inherited.
pub fn check_preserve_fds(n: u32) -> Result<u32> {
    if n == 0 {
        return Ok(0);
    }
    let highest = highest_inherited_fd()?;
    // The last descriptor asked for, 3+N-1, in u64: no overflow for any N.
    let last = u64::from(n) + 2;
    if last > u64::try_from(highest).unwrap_or(0) {
        bail!("--preserve-fds {n}: fd {last} is not open (the highest descriptor berth was given is {highest})");
    }
    Ok(n)
}

/// The highest descriptor of this process that is open and survives execve (-1 when there is none).
fn highest_inherited_fd() -> Result<i32> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let mut highest = -1;
    for entry in std::fs::read_dir("/proc/self/fd").context("read /proc/self/fd")? {
        let name = entry.context("read /proc/self/fd")?.file_name();
        let Some(fd) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // The directory's own descriptor is close-on-exec (and gone once the listing is done: EBADF).
        match fcntl(fd, FcntlArg::F_GETFD) {
            Ok(flags) if !FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC) => {
                highest = highest.max(fd)
            }
            _ => {}
        }
    }
    Ok(highest)
}

/// The state dir of an existing container id (the id is validated first: it becomes a path).
pub fn existing(cli: &Cli, id: &str) -> Result<StateDir> {
    crate::spec::validate_id(id)?;
    Ok(StateDir::new(&cli.root, id))
}
