//! Shared harness for tests that run real containers: busybox bundles, a private state root per test, unique ids
//! and relative cgroups, and guards that clean up containers, cgroups and directories even when a test fails.
//!
//! These tests need root and `busybox-static` (`make deps`).

#![allow(dead_code)]

pub mod tty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique name for this test process and call (ids, cgroups and directories use it).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The busybox-static binary the bundles are made of.
pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox-static is needed (make deps)");
}

/// A bundle directory with a busybox rootfs and berth's default config (terminal off, relative cgroup).
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
    /// The relative cgroupsPath, `berth-tests/<name>`.
    pub cgroup: String,
}

impl Bundle {
    pub fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("berth-test-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "tmp", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
        let list = Command::new(busybox()).arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
        let out = Command::new(BERTH)
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "berth spec: {out:?}");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let cgroup = format!("berth-tests/{name}");
        config["process"]["terminal"] = json!(false);
        config["linux"]["cgroupsPath"] = json!(cgroup);
        // The tests' bundles all have a cgroup namespace (`berth spec`, like runc's, adds one on pure v2 only).
        let nss = config["linux"]["namespaces"].as_array_mut().unwrap();
        if !nss.iter().any(|n| n["type"] == "cgroup") {
            nss.push(json!({"type": "cgroup"}));
        }
        let b = Bundle {
            dir,
            config,
            cgroup,
        };
        b.save();
        b
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Sets process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self.save();
        self
    }

    /// Runs `sh -c script` in the container.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Edits the config in place.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Bundles may hold mounts only if a test failed half-way in a no-mount-namespace container; detach first.
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.rootfs())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// berth with a private state root. Dropping it force-deletes every container left under that root and removes
/// the root.
pub struct Berth {
    pub root: PathBuf,
}

impl Berth {
    pub fn new() -> Berth {
        let root = std::env::temp_dir().join(unique("berth-root"));
        Berth { root }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BERTH);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Runs berth with `args`; stdin is /dev/null and output is captured.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        bounded(c, &format!("berth {args:?}"))
    }

    /// Runs berth, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs berth, asserting failure with exit code 1 (255 for `exec`, as runc's) and one error line; returns
    /// stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let code = if args.first() == Some(&"exec") {
            255
        } else {
            1
        };
        assert_eq!(
            out.status.code(),
            Some(code),
            "berth {args:?} should fail: {err}"
        );
        assert!(!err.contains("panicked"), "berth {args:?} panicked: {err}");
        assert!(!err.trim().is_empty(), "berth {args:?} failed silently");
        err
    }

    /// `create` with the container's stdio going to files in the bundle (a pipe would stay open as long as the
    /// container lives). Returns the output of berth itself.
    pub fn create(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        let (out, err) = stdio_files(bundle, id);
        let mut c = self.cmd();
        c.arg("create")
            .arg("--bundle")
            .arg(&bundle.dir)
            .args(extra)
            .arg(id);
        c.stdin(Stdio::null()).stdout(out).stderr(err);
        let status = bounded(c, &format!("berth create {id}")).status;
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(stdio_path(bundle, id, "err")).unwrap_or_default(),
        }
    }

    /// The container's stdout so far (when it was created with [`Berth::create`]).
    pub fn stdout_of(&self, bundle: &Bundle, id: &str) -> String {
        std::fs::read_to_string(stdio_path(bundle, id, "out")).unwrap_or_default()
    }

    /// `create` without extra flags, asserting that it succeeded (its stderr in the failure message).
    pub fn create_ok(&self, bundle: &Bundle, id: &str) {
        let out = self.create(bundle, id, &[]);
        assert!(
            out.status.success(),
            "create {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Polls until the container reaches `status` (bounded).
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.status(id);
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: still {now}, wanted {status}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The cgroup directories berth recorded for a container.
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        let raw = std::fs::read(self.root.join(id).join("state.json")).unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        v["cgroupPaths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| PathBuf::from(p.as_str().unwrap()))
            .collect()
    }

    /// Runs the bundle in the foreground with `run`; returns (exit code, stdout, stderr).
    pub fn run_bundle(&self, bundle: &Bundle, id: &str) -> (i32, String, String) {
        let mut c = self.cmd();
        c.args(["run", "--bundle"])
            .arg(&bundle.dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        captured(bounded(c, &format!("berth run {id}")))
    }
}

impl Default for Berth {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                let mut c = self.cmd();
                c.args(["delete", "--force", &id]).stderr(Stdio::null());
                bounded(c, &format!("berth delete --force {id}"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
        remove_test_cgroup_parents();
    }
}

/// How long one berth call in a test may take: far beyond any real one, so that a hung berth fails its test with
/// a message instead of hanging the whole suite.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end and returns what it printed to the pipes the caller set (`Stdio::piped()`; unlike
/// `output()`, unset streams are inherited), bounded by [`CALL_TIMEOUT`]: past it the process is killed and the
/// test fails naming `what`.
pub fn bounded(mut cmd: Command, what: &str) -> Output {
    bounded_within(&mut cmd, what, CALL_TIMEOUT)
}

/// [`bounded`] with a timeout of the caller's choosing (for a call meant to hang, or a long one).
pub fn bounded_within(cmd: &mut Command, what: &str, limit: Duration) -> Output {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let pid = child.id() as i32;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    // Each pipe drained on its own thread (as `output()` does), so a child filling one never blocks on the other.
    fn drain<R: std::io::Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (out, err) = (drain(stdout), drain(stderr));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, out.join().unwrap(), err.join().unwrap()));
    });
    match rx.recv_timeout(limit) {
        Ok((status, stdout, stderr)) => Output {
            status: status.unwrap_or_else(|e| panic!("{what}: wait: {e}")),
            stdout,
            stderr,
        },
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{what}: no answer within {limit:?}; killed it");
        }
    }
}

/// A test that cannot run on this host says so where a person reads it (libtest hides the `eprintln!` of a
/// passing test, not a write to fd 2) and in CARGO_TARGET_TMPDIR/skipped.txt (target/<triple>/tmp), which `make test`
/// prints at the end.
pub fn skipped(test: &str, reason: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

fn stdio_path(bundle: &Bundle, id: &str, which: &str) -> PathBuf {
    bundle.dir.join(format!("{id}.{which}"))
}

fn stdio_files(bundle: &Bundle, id: &str) -> (std::fs::File, std::fs::File) {
    (
        std::fs::File::create(stdio_path(bundle, id, "out")).unwrap(),
        std::fs::File::create(stdio_path(bundle, id, "err")).unwrap(),
    )
}

/// Removes the (empty) `berth-tests` parents that relative cgroup paths create under our own cgroups.
pub fn remove_test_cgroup_parents() {
    for dir in own_cgroup_dirs() {
        let _ = std::fs::remove_dir(dir.join("berth-tests"));
    }
}

/// This process's cgroup directory in every mounted hierarchy.
pub fn own_cgroup_dirs() -> Vec<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let mountpoint = pre[4];
        let ctrls: Vec<&str> = match post[0] {
            "cgroup2" => Vec::new(),
            "cgroup" => post[2]
                .split(',')
                .filter(|o| !["rw", "ro", "xattr", "noprefix", "clone_children"].contains(o))
                .collect(),
            _ => continue,
        };
        for l in cgroups.lines() {
            let mut parts = l.splitn(3, ':');
            let (_, c, path) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let mut have: Vec<&str> = if c.is_empty() {
                Vec::new()
            } else {
                c.split(',').collect()
            };
            let mut want = ctrls.clone();
            have.sort();
            want.sort();
            if have == want {
                out.push(Path::new(mountpoint).join(path.trim_start_matches('/')));
            }
        }
    }
    out
}

/// The mapped root of the user-namespace tests: container ids 0..65536 are host ids 100000..165536.
pub const MAPPED_ROOT: &str = "100000:100000";

/// Adds a new user namespace mapping container root to host 100000 (65536 ids), and drops the cgroup mount, which a
/// fresh user namespace may not make.
pub fn with_user_ns(c: &mut Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys/fs/cgroup");
}

/// chown -R the rootfs, as a real user-namespaced bundle's image would be owned by the mapped root.
pub fn chown_rootfs(b: &Bundle, owner: &str) {
    let st = Command::new("chown")
        .args(["-R", owner])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
}

/// (exit code, stdout, stderr) of a finished command.
pub fn captured(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Is `pid` a live (non-zombie) process?
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// Asserts that nothing of container `id` is left: no state dir, no cgroup directory, no live init.
pub fn assert_gone(berth: &Berth, id: &str, cgroups: &[PathBuf], pid: Option<i64>) {
    assert!(!berth.root.join(id).exists(), "{id}: state dir left behind");
    for d in cgroups {
        assert!(!d.exists(), "{id}: cgroup {} left behind", d.display());
    }
    if let Some(pid) = pid {
        assert!(!alive(pid), "{id}: init {pid} still alive");
    }
}

/// The host's namespace inode for `kind` (e.g. "pid", "net").
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .to_string()
}

/// The syscall helper (tests/helpers/sysc.rs: raw syscalls, prints `ret=N` or `errno=N`). Never part of berth.
pub fn sysc() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_helper("sysc")).clone()
}

/// The mount-race attacker (tests/helpers/swap.rs: renameat2(RENAME_EXCHANGE) in a loop). Never part of berth.
pub fn swapper() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_helper("swap")).clone()
}

/// Builds tests/helpers/NAME.rs with plain rustc as a static binary, so that it runs in a busybox rootfs.
fn build_helper(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/helpers/{name}.rs"));
    // Test binaries run in parallel: build under a private name, then rename into place.
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    let st = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(&tmp)
        .arg(&src)
        .status()
        .expect("run rustc");
    assert!(st.success(), "building {}", src.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

impl Bundle {
    /// Puts the syscall helper into the rootfs as /bin/sysc.
    pub fn with_sysc(&mut self) -> &mut Self {
        std::fs::copy(sysc(), self.rootfs().join("bin/sysc")).unwrap();
        self
    }
}

/// A seccomp agent's first step: accepts berth's connection on `listener` and receives the container process
/// state (JSON) with the notify fd (SCM_RIGHTS), as runc sends them.
pub fn receive_state_and_notify_fd(
    listener: &std::os::unix::net::UnixListener,
) -> (Value, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY (test): the fd was just received and is owned by nobody else.
            fd = Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
    (state, fd.expect("no fd with the state"))
}

/// `berth <flags> create --bundle <dir> <id>` expecting failure: one error line naming the container and each of
/// `want`, no state dir, and no cgroup left under `berth-tests/` or `system.slice/` (the systemd driver's units)
/// whose name holds the id. Returns the error.
pub fn create_fails_with(
    berth: &Berth,
    flags: &[&str],
    bundle: &Path,
    id: &str,
    want: &[&str],
) -> String {
    let mut args = flags.to_vec();
    args.extend(["create", "--bundle", bundle.to_str().unwrap(), id]);
    let err = berth.fails(&args);
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(id), "error must name the container: {err}");
    for w in want {
        assert!(err.contains(w), "error should mention {w:?}: {err}");
    }
    assert!(!berth.root.join(id).exists(), "{id}: state dir left behind");
    for d in own_cgroup_dirs() {
        for rel in ["berth-tests", "system.slice"] {
            let Ok(entries) = std::fs::read_dir(d.join(rel)) else {
                continue;
            };
            for e in entries.flatten() {
                assert!(
                    !e.file_name().to_string_lossy().contains(id),
                    "{id}: cgroup {} left behind",
                    e.path().display()
                );
            }
        }
    }
    err
}

/// Capability names in bit order (linux/capability.h), for masks to compare with /proc/<pid>/status.
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The bit mask of capabilities named `CAP_*`.
pub fn cap_mask(caps: &[&str]) -> u64 {
    caps.iter()
        .map(|c| {
            let bare = c.strip_prefix("CAP_").unwrap_or(c);
            let bit = CAP_NAMES
                .iter()
                .position(|n| *n == bare)
                .unwrap_or_else(|| panic!("unknown capability {c}"));
            1u64 << bit
        })
        .fold(0, |a, b| a | b)
}

/// CapInh, CapPrm, CapEff, CapBnd, CapAmb from a /proc/<pid>/status text.
pub fn cap_sets(status: &str) -> [u64; 5] {
    let get = |key: &str| {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} missing in {status}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"].map(get)
}

/// Sets process.capabilities; a `None` set is left out of the config (as runc 1.1's template leaves inheritable).
pub fn set_caps(
    c: &mut Value,
    bounding: &[&str],
    permitted: &[&str],
    effective: &[&str],
    inheritable: Option<&[&str]>,
    ambient: Option<&[&str]>,
) {
    let mut caps = json!({"bounding": bounding, "permitted": permitted, "effective": effective});
    if let Some(i) = inheritable {
        caps["inheritable"] = json!(i);
    }
    if let Some(a) = ambient {
        caps["ambient"] = json!(a);
    }
    c["process"]["capabilities"] = caps;
}
