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
mod spec;
mod start;
mod state;
mod update;

use anyhow::{bail, Result};

use crate::cli::{Cli, Command};
use crate::container::state::StateDir;

pub fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.version {
        print!("{}", version_text());
        return Ok(0);
    }
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: berth has no systemd cgroup driver yet; use cgroupfs (drop the flag)");
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
        crate::spec::OCI_VERSION,
        option_env!("BERTH_RUSTC").unwrap_or("unknown"),
    )
}

/// The state dir of an existing container id (the id is validated first: it becomes a path).
pub fn existing(cli: &Cli, id: &str) -> Result<StateDir> {
    crate::spec::validate_id(id)?;
    Ok(StateDir::new(&cli.root, id))
}
