//! berth: a daemonless OCI container runtime. Command-line parsing only; each command lives in `commands/`.

// Every unsafe block says why it is sound (and lives in src/sys).
#![deny(clippy::undocumented_unsafe_blocks)]

mod cgroups;
mod cli;
mod commands;
mod config;
mod container;
mod logging;
mod lsm;
mod mountinfo;
mod namespaces;
mod oci_state;
mod process;
mod procfs;
mod resolve;
mod rootfs;
mod sys;
mod time;

fn main() {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        // Usage errors exit 1 like runc's (clap's default is 2); --help and the like exit 0.
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // Before any work: the commands that make processes a container can see run from a sealed view of berth.
    let sealed = match &cli.command {
        Some(c) if commands::sealed::needed_for(c) => commands::sealed::ensure(),
        _ => Ok(()),
    };
    logging::init(cli.log.clone(), cli.log_format, cli.debug);
    let result = sealed.and_then(|()| commands::dispatch(&cli));
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logging::error(&logging::chain(&e));
            std::process::exit(1);
        }
    }
}
