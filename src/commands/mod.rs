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
pub mod rootless;
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

/// runc's shape (`runc version`, `commit`, `spec`, `go`, `libseccomp`), with berth's own names: the compiler's
/// version, and no libseccomp (berth compiles seccomp profiles itself).
pub fn version_text() -> String {
    format!(
        "berth version {}\ncommit: {}\nspec: {}\nrust: {}\nseccomp: built in (no libseccomp)\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("BERTH_COMMIT").unwrap_or("unknown"),
        crate::config::OCI_VERSION,
        option_env!("BERTH_RUSTC").unwrap_or("unknown"),
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
    let given = inherited_fds()?;
    let highest = given.iter().copied().max().unwrap_or(-1);
    // Each descriptor from 3 to the last asked for, 3+N-1 (in u64: no overflow for any N), must be open: one of
    // berth's own descriptors (the start socket, the sync channel) could otherwise take a missing number. The loop
    // stops at the first hole, at the latest just above the highest descriptor given.
    let last = u64::from(n) + 2;
    for fd in 3..=last {
        if !i32::try_from(fd).is_ok_and(|fd| given.contains(&fd)) {
            bail!("--preserve-fds {n}: fd {fd} is not open (the highest descriptor berth was given is {highest})");
        }
    }
    Ok(n)
}

/// The descriptors of this process that are open and survive execve.
fn inherited_fds() -> Result<std::collections::BTreeSet<i32>> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let mut fds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").context("read /proc/self/fd")? {
        let name = entry.context("read /proc/self/fd")?.file_name();
        let Some(fd) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // The directory's own descriptor is close-on-exec (and gone once the listing is done: EBADF).
        match fcntl(fd, FcntlArg::F_GETFD) {
            Ok(flags) if !FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC) => {
                fds.insert(fd);
            }
            _ => {}
        }
    }
    Ok(fds)
}

/// The state dir of an existing container id (the id is validated first: it becomes a path).
pub fn existing(cli: &Cli, id: &str) -> Result<StateDir> {
    crate::config::validate_id(id)?;
    Ok(StateDir::new(&cli.root, id))
}
