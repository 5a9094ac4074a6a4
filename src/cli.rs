//! The command line, as runc has it: global flags first, then one subcommand.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::logging::Format;

pub const DEFAULT_ROOT: &str = "/run/berth";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A daemonless, OCI-compliant container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended).
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// `--root` was given on the command line (a missing default root is no error for `list`; a missing given one
    /// is, as in runc).
    #[arg(skip)]
    pub root_given: bool,
    /// Log file (default: stderr only).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: Format,
    /// Also log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Let systemd make the cgroup: a transient scope, cgroupsPath "slice:prefix:name".
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Ignore cgroup permission errors ('true', 'false', or 'auto': rootless when not root, or root of a user
    /// namespace).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Print version information.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Parses the command line, with help texts laid out as runc's (NAME, USAGE, VERSION, COMMANDS, GLOBAL OPTIONS;
/// a subcommand's: NAME, USAGE, OPTIONS).
pub fn parse() -> Result<Cli, clap::Error> {
    let version = crate::commands::version_text();
    let top = format!(
        "NAME:\n   {{name}} - {{about}}\n\nUSAGE:\n   {{name}} [global options] command [command options] \
         [arguments...]\n\nVERSION:\n   {}\n\nCOMMANDS:\n{{subcommands}}\n\nGLOBAL OPTIONS:\n{{options}}\n",
        version.trim_start_matches("berth version ").trim_end()
    );
    let command = Cli::command().help_template(top).mut_subcommands(|s| {
        let name = s.get_name().to_string();
        s.help_template(format!(
            "NAME:\n   berth {name} - {{about}}\n\nUSAGE:\n   {{usage}}\n\nOPTIONS:\n{{options}}\n"
        ))
    });
    let matches = command.try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    // Without --root, a rootless caller keeps its state in its own runtime dir (see commands::rootless).
    cli.root_given = matches.value_source("root") == Some(clap::parser::ValueSource::CommandLine);
    if !cli.root_given {
        cli.root = crate::commands::rootless::Caller::current().default_root();
    }
    Ok(cli)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container: set it up and leave its init waiting for `start`.
    Create(CreateArgs),
    /// Run the user program of a created container.
    Start(IdArg),
    /// Print the state of a container as JSON.
    State(IdArg),
    /// Send a signal to the container's init (or to all its processes).
    Kill(KillArgs),
    /// Delete a container and everything it made.
    Delete(DeleteArgs),
    /// Create and start a container, and wait for it in the foreground.
    Run(RunArgs),
    /// Write a default config.json.
    Spec(SpecArgs),
    /// List the containers under the state root.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Run a new process inside a running container.
    Exec(Box<ExecArgs>),
    /// Print the features this runtime implements (runtime-spec features.json).
    Features,
    /// Suspend every process of a running container (cgroup freezer).
    Pause(IdArg),
    /// Resume a paused container.
    Resume(IdArg),
    /// List the processes of a container (host `ps`, filtered to the container's cgroup).
    Ps(PsArgs),
    /// Change the resource limits of a container.
    Update(Box<UpdateArgs>),
    /// Print container stats and OOM events as JSON lines.
    Events(EventsArgs),
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Path to an OCI process JSON; the command line after the id is then ignored.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Unix socket that receives the pty master (with --tty).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the exec'd process (SCM_RIGHTS).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's host pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=value).
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// uid[:gid] to run as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional groups.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (to the bounding, effective and permitted sets).
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux process label.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass N extra fds (3 .. 3+N-1) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec in a paused container (the process runs once it is resumed).
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup of the container's: [<controller>[,<controller>...]:]<path>
    /// (repeatable on cgroup v1).
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: table (host `ps` output) or json (array of host pids).
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Arguments for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct UpdateArgs {
    /// LinuxResources JSON of the runtime spec, from FILE or `-` for stdin.
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    /// Block IO weight (10..1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1: unlimited).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst in microseconds.
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// Realtime period in microseconds.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// SCHED_IDLE for the cgroup (0 or 1).
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    /// CPUs allowed (e.g. 0-3,6).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed (e.g. 0-1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix; -1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (ignored, as kernels no longer have it).
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit.
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Stats collection interval (e.g. 5s, 500ms, 1m).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Print the container's stats once and exit.
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container's init (SCM_RIGHTS).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// File to write the init's host pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for ramdisk roots): move the rootfs and chroot.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N-1) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Do not delete the container after it exits.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process in the container.
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number (default SIGTERM).
    pub signal: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format: table or json.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Directory to write config.json to.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// A config for a rootless container (user namespace mapping the caller).
    #[arg(long)]
    pub rootless: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn containerd_shim_style_create() {
        let c = parse(&[
            "--root",
            "/run/x",
            "--log",
            "/tmp/l.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--console-socket",
            "/s",
            "id1",
        ]);
        assert_eq!(c.root, PathBuf::from("/run/x"));
        assert_eq!(c.log_format, Format::Json);
        let Some(Command::Create(a)) = c.command else {
            panic!()
        };
        assert_eq!((a.id.as_str(), a.bundle.to_str()), ("id1", Some("/b")));
        assert_eq!(a.console_socket, Some(PathBuf::from("/s")));
    }

    #[test]
    fn kill_signal_is_optional_and_all_flag() {
        let c = parse(&["kill", "--all", "c", "KILL"]);
        let Some(Command::Kill(k)) = c.command else {
            panic!()
        };
        assert!(k.all);
        assert_eq!(k.signal.as_deref(), Some("KILL"));
        let c = parse(&["kill", "c"]);
        let Some(Command::Kill(k)) = c.command else {
            panic!()
        };
        assert_eq!(k.signal, None);
    }

    #[test]
    fn exec_takes_its_flags_then_the_command_with_its_own_flags() {
        let c = parse(&[
            "exec", "-t", "-e", "A=1", "-u", "1:2", "-g", "5", "--cap", "CAP_KILL", "c1", "sh",
            "-c", "ls -l",
        ]);
        let Some(Command::Exec(e)) = c.command else {
            panic!()
        };
        assert!(e.tty);
        assert_eq!(e.env, ["A=1"]);
        assert_eq!(e.user.as_deref(), Some("1:2"));
        assert_eq!(e.additional_gids, [5]);
        assert_eq!(e.id, "c1");
        assert_eq!(e.command, ["sh", "-c", "ls -l"]);
    }

    #[test]
    fn ps_passes_its_own_arguments_to_ps() {
        let c = parse(&["ps", "--format", "json", "c1"]);
        let Some(Command::Ps(p)) = c.command else {
            panic!()
        };
        assert_eq!((p.format.as_str(), p.id.as_str()), ("json", "c1"));
        assert!(p.ps_args.is_empty());
        let c = parse(&["ps", "c1", "-o", "pid,comm"]);
        let Some(Command::Ps(p)) = c.command else {
            panic!()
        };
        assert_eq!(p.ps_args, ["-o", "pid,comm"]);
    }

    #[test]
    fn update_flags_like_runc() {
        let c = parse(&[
            "update",
            "--memory",
            "-1",
            "--cpu-share",
            "512",
            "--cpu-quota",
            "-1",
            "--pids-limit",
            "10",
            "c1",
        ]);
        let Some(Command::Update(u)) = c.command else {
            panic!()
        };
        assert_eq!(u.memory.as_deref(), Some("-1"));
        assert_eq!(
            (u.cpu_share, u.cpu_quota, u.pids_limit),
            (Some(512), Some(-1), Some(10))
        );
        let c = parse(&["update", "--cpu-shares", "2", "-r", "-", "c1"]);
        let Some(Command::Update(u)) = c.command else {
            panic!()
        };
        assert_eq!((u.cpu_share, u.resources.as_deref()), (Some(2), Some("-")));
    }

    #[test]
    fn global_flags_after_subcommand_and_defaults() {
        let c = parse(&["delete", "-f", "c", "--root", "/r"]);
        assert_eq!(c.root, PathBuf::from("/r"));
        let c = parse(&["state", "c"]);
        assert_eq!(c.root, PathBuf::from(DEFAULT_ROOT));
    }
}
