//! The per-container state directory: `state.json` (written atomically), the saved config, the lock, and the
//! status derived from the recorded pid *and* its start time, so a reused pid is never taken for the container.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub use crate::oci_state::{OciState, Status};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
/// The init's listening socket: present while the container is `created`; `start` connects to it.
pub const START_SOCKET: &str = "start.sock";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt state: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What berth records about a container. Serialised as state.json in the state dir; `berth state` prints the
/// OCI view of it (see [`OciState`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub id: String,
    /// Recorded lifecycle step: `creating` until create finished, then `created`, `running` after start, or
    /// `stopped`. The live status also looks at the process (see [`State::status`]).
    pub status: Status,
    /// Host pid of the container's init; 0 until it exists.
    pub pid: i32,
    /// The init's start time in clock ticks since boot (/proc/<pid>/stat field 22), to tell it from a reused pid.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Cgroup directories per hierarchy mount point, recorded before they are made so that `delete` always finds
    /// them.
    #[serde(default)]
    pub cgroup_paths: BTreeMap<String, PathBuf>,
    /// Whether the container has its own pid namespace (then killing init kills all).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// The container has no mount namespace: its mounts were made in the host's, under the rootfs, and `delete`
    /// must take them down.
    #[serde(default)]
    pub host_mounts: bool,
    /// Whether config.json has hooks: start and delete read the saved config only then.
    #[serde(default)]
    pub has_hooks: bool,
    /// The systemd scope (and its slice) that holds the cgroup, when created with `--systemd-cgroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdUnit>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SystemdUnit {
    pub unit: String,
    pub slice: String,
}

impl State {
    /// The container's cgroup manager (systemd's when systemd made the cgroup).
    pub fn cgroup_manager(&self) -> Box<dyn crate::cgroups::Manager> {
        crate::cgroups::from_record(
            &self.cgroup_paths,
            self.systemd
                .as_ref()
                .map(|s| (s.unit.as_str(), s.slice.as_str())),
        )
    }
}

/// A container's state directory, `<root>/<id>`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub id: String,
    pub path: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path, id: &str) -> Self {
        StateDir {
            id: id.to_string(),
            path: root.join(id),
        }
    }

    /// Makes the state dir. `mkdir` is the arbiter between concurrent creates: exactly one succeeds, and the
    /// losers return before touching anything.
    pub fn create(&self) -> Result<(), Error> {
        if let Some(root) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(io("create state root", root))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(self.id.clone()))
            }
            Err(e) => Err(io("create state dir", &self.path)(e)),
        }
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Takes the container's exclusive lock (flock on the directory). Held for the whole of a state-changing
    /// command; released when the returned guard drops or the process dies. O_CLOEXEC, and the init closes its copy.
    pub fn lock(&self) -> Result<Flock<File>, Error> {
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(self.id.clone()),
                _ => io("open state dir", &self.path)(e),
            })?;
        Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, errno)| Error::Io {
            op: "lock",
            path: self.path.clone(),
            source: errno.into(),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn load(&self) -> Result<State, Error> {
        let path = self.file(STATE_FILE);
        let raw = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(self.id.clone()),
            _ => io("read", &path)(e),
        })?;
        serde_json::from_slice(&raw).map_err(|e| Error::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes state.json atomically: a reader sees the old or the new file, never a partial one.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let json = serde_json::to_vec(state).expect("state serialises");
        self.write_atomic(STATE_FILE, &json)
    }

    pub fn write_atomic(&self, name: &str, data: &[u8]) -> Result<(), Error> {
        let tmp = self.file(&format!(".{name}.tmp"));
        let dst = self.file(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io("write", &tmp))?;
        f.write_all(data).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &dst).map_err(io("rename", &dst))
    }

    /// Removes the whole state dir (no error if it is already gone).
    pub fn remove(&self) -> Result<(), Error> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &self.path)(e)),
            _ => Ok(()),
        }
    }
}

/// What /proc says about a pid right now.
#[derive(Debug, PartialEq, Eq)]
pub enum ProcState {
    /// Alive (not a zombie), with this start time.
    Alive { start_time: u64 },
    /// Gone or a zombie.
    Dead,
}

/// Reads /proc/<pid>/stat: state and start time. The comm field may hold spaces and ')' so parse from the last ')'.
pub fn proc_state(pid: i32) -> ProcState {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => parse_stat(&stat).unwrap_or(ProcState::Dead),
        Err(_) => ProcState::Dead,
    }
}

pub fn parse_stat(stat: &str) -> Option<ProcState> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); start time is field 22.
    let state = *fields.first()?;
    if state == "Z" || state == "X" || state == "x" {
        return Some(ProcState::Dead);
    }
    Some(ProcState::Alive {
        start_time: fields.get(19)?.parse().ok()?,
    })
}

impl State {
    /// Is the recorded init still the process we started?
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && proc_state(self.pid)
                == ProcState::Alive {
                    start_time: self.pid_start_time,
                }
    }

    /// The live status: the recorded step, corrected by whether the init still runs, whether it is still waiting
    /// for `start` (its socket exists) and whether the cgroup is frozen.
    pub fn status(&self, dir: &StateDir, frozen: impl FnOnce() -> bool) -> Status {
        // A recorded stop is final: after a failed exec the init may still be exiting for a moment.
        if self.status == Status::Stopped || !self.init_alive() {
            return match self.status {
                Status::Creating if self.pid == 0 => Status::Creating,
                _ => Status::Stopped,
            };
        }
        match self.status {
            Status::Creating => Status::Creating,
            _ if dir.file(START_SOCKET).exists() => Status::Created,
            _ if frozen() => Status::Paused,
            _ => Status::Running,
        }
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: crate::config::OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// Lists the ids under a state root (directories only), sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>, Error> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", root)(e)),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Holds a File open so `AsFd` users can borrow it (keeps the lock type opaque to callers).
pub fn lock_fd(lock: &Flock<File>) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    lock.as_fd().as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_odd_comm_and_zombies() {
        // Fields 4..=21 (18 of them), then field 22, the start time.
        let tail = "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 12345 0 0";
        let alive = format!("42 (a) b) c) S {tail}");
        assert_eq!(
            parse_stat(&alive),
            Some(ProcState::Alive { start_time: 12345 })
        );
        let zombie = format!("42 (x) Z {tail}");
        assert_eq!(parse_stat(&zombie), Some(ProcState::Dead));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_reused_pid_is_not_ours() {
        let me = std::process::id() as i32;
        let ProcState::Alive { start_time } = proc_state(me) else {
            panic!("self not alive")
        };
        let mut st = sample(me, start_time);
        assert!(st.init_alive());
        st.pid_start_time += 1;
        assert!(
            !st.init_alive(),
            "a different start time must mean another process"
        );
    }

    fn sample(pid: i32, start: u64) -> State {
        State {
            id: "t".into(),
            status: Status::Running,
            pid,
            pid_start_time: start,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: crate::time::now_rfc3339(),
            owner: String::new(),
            annotations: BTreeMap::new(),
            cgroup_paths: BTreeMap::new(),
            own_pid_ns: true,
            host_mounts: false,
            has_hooks: false,
            systemd: None,
        }
    }

    #[test]
    fn state_dir_roundtrip_and_exclusive_create() {
        let root = std::env::temp_dir().join(format!("berth-state-test-{}", std::process::id()));
        let dir = StateDir::new(&root, "c1");
        dir.create().unwrap();
        assert!(matches!(dir.create(), Err(Error::Exists(_))));
        let st = sample(1, 2);
        dir.save(&st).unwrap();
        let back = dir.load().unwrap();
        assert_eq!(back.pid, 1);
        assert_eq!(back.status, Status::Running);
        dir.remove().unwrap();
        assert!(matches!(dir.load(), Err(Error::NotFound(_))));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn dead_init_reads_as_stopped() {
        let root = std::env::temp_dir();
        let dir = StateDir::new(&root, "nonexistent-berth-test");
        let st = sample(i32::MAX - 1, 1);
        assert_eq!(st.status(&dir, || false), Status::Stopped);
        assert_eq!(st.oci(Status::Stopped).pid, 0);
    }

    #[test]
    fn a_recorded_stop_wins_over_a_live_pid() {
        let me = std::process::id() as i32;
        let ProcState::Alive { start_time } = proc_state(me) else {
            panic!("self not alive")
        };
        let mut st = sample(me, start_time);
        let dir = StateDir::new(&std::env::temp_dir(), "nonexistent-berth-test");
        assert_eq!(st.status(&dir, || false), Status::Running);
        st.status = Status::Stopped;
        assert_eq!(st.status(&dir, || false), Status::Stopped);
    }
}
