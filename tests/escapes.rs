//! Host protection, each test performing the attack from inside a container (or from a bundle a hostile image
//! could ship): descriptor leaks and the cwd (CVE-2024-21626), /proc/<pid>/exe of berth's init (CVE-2019-5736),
//! a fake /dev/null for masking (CVE-2025-31133) and procfs files swapped for host files (CVE-2025-52881).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The descriptors the container's first process has: only stdio, plus exactly the preserved ones.
#[test]
fn no_berth_descriptor_reaches_the_container() {
    let berth = Berth::new();
    for preserve in [0, 2] {
        let id = unique("esc-fds");
        let mut b = Bundle::new(&id);
        // ls (a child: the "; exit" keeps busybox sh from exec-ing it directly) lists the shell's descriptors.
        b.sh("ls /proc/$$/fd; exit 0");
        // berth is started with 3 and 4 (preservable) and 5 (never to be passed on) open.
        let script = format!(
            "exec 3</etc/hostname 4</etc/hostname 5</etc/hostname; exec {} --root {} run --preserve-fds {preserve} --bundle {} {id}",
            BERTH,
            berth.root.display(),
            b.dir.display()
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = if preserve == 0 { "0 1 2" } else { "0 1 2 3 4" };
        let got: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(got.join(" "), want, "--preserve-fds {preserve}");
    }
}

/// CVE-2024-21626: a cwd of /proc/self/fd/N would make a leaked berth descriptor (a host directory) the
/// container's cwd. berth resolves the cwd inside the rootfs without magic links, so create refuses every such
/// cwd and leaves nothing behind.
#[test]
fn cwd_through_proc_self_fd_is_refused() {
    let berth = Berth::new();
    for n in 3..9 {
        let id = unique("esc-cwd");
        let mut b = Bundle::new(&id);
        b.sh("pwd")
            .edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        let out = berth.create(&b, &id, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "cwd /proc/self/fd/{n} was accepted");
        assert!(err.contains("cwd") && err.contains(&id), "{err}");
        assert!(!berth.root.join(&id).exists());
    }
}

/// CVE-2019-5736, create/start path: while berth's init waits for `start` it is still the berth binary. A process
/// of another container sharing its pid namespace (root, but without CAP_SYS_PTRACE) must not open
/// /proc/<init>/exe at all (the init is non-dumpable); after `start` the same path is the container's own program.
#[test]
fn init_exe_cannot_be_opened_from_inside_before_exec() {
    let berth = Berth::new();
    let shared = std::env::temp_dir().join(unique("esc-exe-shared"));
    std::fs::create_dir_all(&shared).unwrap();
    let _cleanup = RemoveDir(shared.clone());

    // The attacker: waits for a pid, then tries /proc/<pid>/exe for writing and for reading, before and after start.
    let attacker = unique("esc-exe-a");
    let mut a = Bundle::new(&attacker);
    a.with_sysc()
        .sh(
            "while [ ! -e /shared/go ]; do sleep 0.02; done; t=$(cat /shared/go); \
             sysc 2 s:/proc/$t/exe 1 > /shared/before; sysc 2 s:/proc/$t/exe 0 >> /shared/before; \
             touch /shared/done; \
             while [ ! -e /shared/go2 ]; do sleep 0.02; done; \
             sysc 2 s:/proc/$t/exe 0 > /shared/after; touch /shared/done2; sleep 100",
        )
        .edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
        });
    berth.create_ok(&a, &attacker);
    berth.ok(&["start", &attacker]);
    let a_pid = berth.state(&attacker)["pid"].as_i64().unwrap();

    // The victim joins the attacker's pid namespace and stays `created`.
    let victim = unique("esc-exe-v");
    let mut v = Bundle::new(&victim);
    v.args(&["sleep", "100"]).edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "pid" {
                ns["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
            }
        }
    });
    berth.create_ok(&v, &victim);
    let v_pid = berth.state(&victim)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{v_pid}/status")).unwrap();
    let ns_pid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();

    std::fs::write(shared.join("go"), &ns_pid).unwrap();
    wait_for(&shared.join("done"));
    let before = std::fs::read_to_string(shared.join("before")).unwrap();
    assert_eq!(
        before, "errno=13\nerrno=13\n",
        "berth's init exe was reachable (write, read)"
    );

    berth.ok(&["start", &victim]);
    std::fs::write(shared.join("go2"), "").unwrap();
    wait_for(&shared.join("done2"));
    let after = std::fs::read_to_string(shared.join("after")).unwrap();
    assert!(after.starts_with("ret="), "after exec: {after}");
}

/// A container program that is a script starting `#!/proc/self/exe --log`, exec'd with
/// `--root /r state x` after it: were berth's binary what the last execve leaves as /proc/self/exe, the kernel would
/// run the host's berth inside the container, dumpable, and stuck reading the FIFO /r/x/state.json.
fn plant_self_exe_script(b: &mut Bundle) {
    let root = b.rootfs();
    std::fs::write(root.join("evil"), "#!/proc/self/exe --log\n").unwrap();
    std::fs::set_permissions(
        root.join("evil"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("r/x")).unwrap();
    let st = Command::new("mkfifo")
        .arg(root.join("r/x/state.json"))
        .status()
        .unwrap();
    assert!(st.success());
    b.edit(|c| c["root"]["readonly"] = json!(false));
}

/// CVE-2019-5736 through `berth exec`, performed for real against a copy of the berth binary: the container's init
/// watches /proc for a process whose exe is that copy, holds it open, lets it go on, and then tries to write to it
/// through /proc/self/fd once no berth runs it any more. berth's last execve goes through a sealed memfd stub, so
/// `#!/proc/self/exe` finds the stub (which refuses and exits 127), never the host binary: the copy is unchanged
/// and the attacker never even finds it.
#[test]
fn self_exe_script_through_exec_cannot_reach_the_host_binary() {
    let berth = Berth::new();
    let id = unique("esc-selfexe");
    let work = std::env::temp_dir().join(unique("esc-selfexe-bin"));
    std::fs::create_dir_all(&work).unwrap();
    let _cleanup = RemoveDir(work.clone());
    let victim = work.join("berth-victim");
    std::fs::copy(BERTH, &victim).unwrap();
    let original = std::fs::read(&victim).unwrap();
    let shared = work.join("shared");
    std::fs::create_dir_all(&shared).unwrap();

    let mut b = Bundle::new(&id);
    plant_self_exe_script(&mut b);
    b.sh(r#"
        touch /shared/ready
        while [ ! -e /shared/stop ]; do
          for p in /proc/[0-9]*; do
            case "$(readlink $p/exe 2>/dev/null)" in *berth-victim*) ;; *) continue ;; esac
            exec 3<$p/exe
            echo found > /shared/found
            echo '{}' > /r/x/state.json
            i=0
            while [ $i -lt 300 ]; do
              if (echo PWNED >> /proc/self/fd/3) 2>/dev/null; then echo wrote > /shared/wrote; break; fi
              i=$((i+1)); usleep 10000
            done
            touch /shared/stop
          done
        done
        touch /shared/done
        exec sleep 1000"#)
        .edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
        });
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    wait_for(&shared.join("ready"));

    let mut exec = Command::new(&victim)
        .arg("--root")
        .arg(&berth.root)
        .args(["exec", &id, "/evil", "--root", "/r", "state", "x"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = exec.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = exec.kill();
            break exec.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::fs::write(shared.join("stop"), "").unwrap_or(());
    wait_for(&shared.join("done"));
    berth.ok(&["delete", "--force", &id]);

    let after = std::fs::read(&victim).unwrap();
    assert!(
        after == original,
        "the container wrote to the host's berth binary ({} bytes, was {}; ends {:?})",
        after.len(),
        original.len(),
        String::from_utf8_lossy(&after[after.len().saturating_sub(8)..])
    );
    assert!(
        !shared.join("found").exists(),
        "a container process ran with the host's berth binary as its exe"
    );
    assert_eq!(
        status.code(),
        Some(127),
        "the stub refuses to be run as an interpreter"
    );
}

/// The same script as the container's own program: the init's last execve goes through the stub too, so berth's
/// binary never runs inside the container (it would fail on its odd arguments; the stub exits 127).
#[test]
fn self_exe_script_as_the_container_program_runs_the_stub_not_berth() {
    let berth = Berth::new();
    let id = unique("esc-selfexe-init");
    let mut b = Bundle::new(&id);
    plant_self_exe_script(&mut b);
    b.args(&["/evil", "unknown-subcommand"]);
    let (code, _out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 127, "stderr: {err}");
    assert!(
        !err.contains("Usage"),
        "berth's binary ran in the container: {err}"
    );
}

struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CVE-2025-31133: a bundle that puts a host file where /dev/null should be must not get that file bind-mounted
/// (writable) over the masked paths. (berth makes its own /dev/null node and refuses an existing file there; the
/// masking code also checks that /dev/null is the 1:3 character device before binding it.)
#[test]
fn a_fake_dev_null_is_not_used_for_masking() {
    let berth = Berth::new();
    let id = unique("esc-null");
    let mut b = Bundle::new(&id);
    let host_file = b.dir.join("host-secret");
    std::fs::write(&host_file, "host secret\n").unwrap();
    b.sh("cat /proc/kcore; echo done").edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/dev/null", "type": "bind", "source": host_file, "options": ["bind", "rw"]}));
        c["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    });
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert!(
        !out.contains("host secret"),
        "the host file was mounted over a masked path: {out}"
    );
    assert_ne!(
        code, 0,
        "create should refuse the fake /dev/null: {out} {err}"
    );
    assert!(err.contains("/dev/null"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&host_file).unwrap(),
        "host secret\n"
    );
}

/// CVE-2025-52881: procfs files berth writes (a sysctl, oom_score_adj) covered by a bind mount of a host file, or
/// reached through a symlink in a directory mounted over /proc/sys: berth must not write the host file.
#[test]
fn procfs_writes_cannot_be_redirected() {
    let berth = Berth::new();
    type Edit = Box<dyn Fn(&mut serde_json::Value, &Path)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "sysctl over a bind-mounted file",
            Box::new(|c, target| {
                c["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/proc/sys/kernel/domainname", "type": "bind", "source": target,
                    "options": ["bind", "rw"]}));
            }),
        ),
        (
            "oom_score_adj over a bind-mounted file",
            Box::new(|c, target| {
                c["process"]["oomScoreAdj"] = json!(500);
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/proc/self/oom_score_adj", "type": "bind", "source": target,
                    "options": ["bind", "rw"]}));
            }),
        ),
        (
            "sysctl through a symlinked directory over /proc/sys",
            Box::new(|c, target| {
                let fake = target.parent().unwrap().join("fakesys");
                std::fs::create_dir_all(fake.join("kernel")).unwrap();
                let _ = std::os::unix::fs::symlink(target, fake.join("kernel/domainname"));
                c["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/proc/sys", "type": "bind", "source": fake, "options": ["rbind", "rw"]}));
            }),
        ),
    ];
    for (what, edit) in cases {
        let id = unique("esc-proc");
        let mut b = Bundle::new(&id);
        let target = b.dir.join("host-file");
        std::fs::write(&target, "untouched\n").unwrap();
        b.sh("true").edit(|c| edit(c, &target));
        let (code, _, err) = berth.run_bundle(&b, &id);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "untouched\n",
            "{what}: berth wrote the host file"
        );
        if what.starts_with("oom") {
            // berth writes oom_score_adj from the host's /proc: the container's mounts cannot touch that write.
            continue;
        }
        assert_ne!(code, 0, "{what}: should fail");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        assert!(!berth.root.join(&id).exists(), "{what}: state left");
    }
}

/// Adds CAP_SYS_PTRACE to every capability set of the container's process.
fn with_sys_ptrace(c: &mut serde_json::Value) {
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_PTRACE"));
    }
}

/// The attacker, run as a container's init holding CAP_SYS_PTRACE, with /shared from the host: it watches /proc
/// for a process of the berth copy (`berth-victim`), and the moment it sees one: tries to create `escape_name`
/// through that process's /proc/<pid>/root and /proc/<pid>/cwd, opens /proc/<pid>/exe and keeps the descriptor,
/// runs `release` (lets a held berth go on), and once the test says no berth-victim runs any more (/shared/gone),
/// reopens that descriptor for appending through /proc/self/fd/3. Results in /shared/found and /shared/result.
/// It starts watching once `gate` exists in /shared.
fn proc_exe_attacker(escape_name: &str, release: &str, gate: &str) -> String {
    format!(
        r#"
        touch /shared/ready
        while [ ! -e /shared/{gate} ]; do usleep 5000; done
        while :; do
          for p in /proc/[0-9]*; do
            case "$(cat $p/comm 2>/dev/null)" in berth-victim*) ;; *) continue ;; esac
            (touch $p/root/{escape_name} && echo root-created) >> /shared/found 2>&1
            (touch $p/cwd/{escape_name} && echo cwd-created) >> /shared/found 2>&1
            if ! cat $p/exe > /dev/null 2>> /shared/found; then
              echo exe-unreadable >> /shared/found; {release}; touch /shared/opened /shared/done; exec sleep 1000
            fi
            exec 3<$p/exe
            echo exe-opened >> /shared/found
            {release}
            touch /shared/opened
            while [ ! -e /shared/gone ]; do usleep 20000; done
            if (echo PWNED >> /proc/self/fd/3) 2>> /shared/result; then echo wrote; else echo denied; fi >> /shared/result
            touch /shared/done
            exec sleep 1000
          done
          usleep 5000
        done"#
    )
}

/// A copy of berth's binary in a fresh directory (removed on drop), with a shared directory next to it.
struct Victim {
    work: std::path::PathBuf,
    bin: std::path::PathBuf,
    original: Vec<u8>,
    shared: std::path::PathBuf,
}

impl Victim {
    fn new(name: &str) -> Victim {
        let work = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(work.join("shared")).unwrap();
        let bin = work.join("berth-victim");
        std::fs::copy(BERTH, &bin).unwrap();
        let original = std::fs::read(&bin).unwrap();
        Victim {
            shared: work.join("shared"),
            work,
            bin,
            original,
        }
    }

    fn cmd(&self, berth: &Berth) -> Command {
        let mut c = Command::new(&self.bin);
        // berth's own cwd is a directory of the test's: a file created through a berth process's cwd shows there.
        c.current_dir(&self.work)
            .arg("--root")
            .arg(&berth.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn assert_unchanged(&self) {
        let after = std::fs::read(&self.bin).unwrap();
        assert!(
            after == self.original,
            "the container wrote to the host's berth binary ({} bytes, was {})",
            after.len(),
            self.original.len()
        );
    }

    /// What the attacker wrote; it must have found the berth process and opened its exe, or the test proves nothing.
    fn attack_report(&self) -> (String, String) {
        let found = std::fs::read_to_string(self.shared.join("found")).unwrap_or_default();
        let result = std::fs::read_to_string(self.shared.join("result")).unwrap_or_default();
        (found, result)
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

fn shared_mount(c: &mut serde_json::Value, shared: &Path) {
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
}

/// Issue 10, items 1 and 4 (exec): a container holding CAP_SYS_PTRACE catches `berth exec`'s process while it
/// sets up (held on a FIFO at /etc/passwd, read for HOME after the switch to the user), creates a file through its
/// /proc/<pid>/root and cwd, and keeps its /proc/<pid>/exe open; after berth has exited it appends to that
/// descriptor. berth runs from a read-only view of its binary (EROFS), the process is born inside the container's
/// mount namespace and root: the copy of berth stays unchanged and no file appears on the host's root.
#[test]
fn exec_child_exe_and_root_are_out_of_reach_even_with_cap_sys_ptrace() {
    let berth = Berth::new();
    let v = Victim::new("esc-ptrace-exec");
    let id = unique("esc-ptrace-exec");
    let escape = format!("berth-escape-{id}");
    let mut b = Bundle::new(&id);
    let passwd = b.rootfs().join("etc/passwd");
    std::fs::remove_file(&passwd).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&passwd)
        .status()
        .unwrap()
        .success());
    let release = "echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd";
    b.sh(&proc_exe_attacker(&escape, release, "ready"))
        .edit(|c| {
            with_sys_ptrace(c);
            c["process"]["env"] = json!(["PATH=/bin", "HOME=/root"]);
            c["root"]["readonly"] = json!(false);
            shared_mount(c, &v.shared);
        });
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    wait_for(&v.shared.join("ready"));
    let pf = b.dir.join("p.json");
    std::fs::write(
        &pf,
        json!({"args": ["true"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
            .to_string(),
    )
    .unwrap();
    let out = v
        .cmd(&berth)
        .args(["exec", "--process", pf.to_str().unwrap(), &id])
        .output()
        .unwrap();
    std::fs::write(v.shared.join("gone"), "").unwrap();
    wait_for(&v.shared.join("done"));
    berth.ok(&["delete", "--force", &id]);
    let (found, result) = v.attack_report();
    let on_host = Path::new("/").join(&escape).exists();
    let _ = std::fs::remove_file(Path::new("/").join(&escape));
    v.assert_unchanged();
    assert!(!on_host, "a file was created on the host's root: {found}");
    assert!(
        !v.work.join(&escape).exists(),
        "a file was created in berth's cwd on the host: {found}"
    );
    assert!(
        found.contains("exe-opened"),
        "the attacker did not get to open the exe (nothing was attacked): {found}"
    );
    assert!(result.contains("denied"), "{result}");
    assert!(
        result.contains("Read-only file system") || result.contains("Text file busy"),
        "{result}"
    );
    assert!(
        out.status.success(),
        "exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The attacker of [`created_init_attack`]: a container holding CAP_SYS_PTRACE whose pid namespace a second
/// container, made by the copy of berth, joins by path. With `from_birth`, it attacks the init from its first
/// appearance in /proc (before pivot_root); otherwise once `create` has returned (the init waits for `start`).
/// Returns the attack's report and the path of the file it tried to create on the host's root.
fn created_init_attack(from_birth: bool) -> (String, String, std::path::PathBuf, Victim) {
    let berth = Berth::new();
    let v = Victim::new("esc-ptrace-init");
    let attacker = unique("esc-ptrace-a");
    let escape = format!("berth-escape-{attacker}");
    let gate = if from_birth { "ready" } else { "created" };
    let mut a = Bundle::new(&attacker);
    a.sh(&proc_exe_attacker(&escape, "true", gate)).edit(|c| {
        with_sys_ptrace(c);
        shared_mount(c, &v.shared);
    });
    berth.create_ok(&a, &attacker);
    berth.ok(&["start", &attacker]);
    wait_for(&v.shared.join("ready"));
    let a_pid = berth.state(&attacker)["pid"].as_i64().unwrap();

    let victim = unique("esc-ptrace-v");
    let mut vb = Bundle::new(&victim);
    vb.args(&["sleep", "100"]).edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "pid" {
                ns["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
            }
        }
    });
    // The init keeps create's stdout and stderr: a file, not a pipe that would never reach EOF.
    let log = v.work.join("create.err");
    let status = v
        .cmd(&berth)
        .args(["create", "--bundle"])
        .arg(&vb.dir)
        .arg(&victim)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let created = status.success();
    std::fs::write(v.shared.join("created"), "").unwrap();
    if created {
        wait_for(&v.shared.join("opened"));
        berth.ok(&["start", &victim]);
        berth.ok(&["delete", "--force", &victim]);
    }
    std::fs::write(v.shared.join("gone"), "").unwrap();
    if created {
        wait_for(&v.shared.join("done"));
    }
    berth.ok(&["delete", "--force", &attacker]);
    assert!(
        created,
        "create: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let (found, result) = v.attack_report();
    let host_file = Path::new("/").join(&escape);
    (found, result, host_file, v)
}

/// Issue 10, item 2: the created-state init of a container joining another's pid namespace by path waits for
/// `start` in plain sight of that other container, which holds CAP_SYS_PTRACE: it opens the init's
/// /proc/<pid>/exe, keeps it past `start` and `delete`, and appends to it once no berth runs (EROFS: berth runs
/// from a read-only view of its binary). Its /proc/<pid>/root is by then the container's own root.
#[test]
fn created_init_in_a_shared_pid_namespace_exposes_no_writable_berth() {
    let (found, result, host_file, v) = created_init_attack(false);
    let on_host = host_file.exists();
    let _ = std::fs::remove_file(&host_file);
    v.assert_unchanged();
    assert!(!on_host, "a file was created on the host's root: {found}");
    let in_cwd = v.work.join(host_file.file_name().unwrap());
    assert!(
        !in_cwd.exists(),
        "a file was created in berth's cwd on the host: {found}"
    );
    assert!(
        found.contains("exe-opened"),
        "the attacker did not get to open the exe (nothing was attacked): {found}"
    );
    assert!(
        result.contains("denied") && result.contains("Read-only file system"),
        "{result}"
    );
}

/// The stretch of issue 10, NOT met (see the README's security section for why): from the init's birth in a
/// joined pid namespace until its pivot_root, an attacker holding CAP_SYS_PTRACE in the host's user namespace
/// reaches the host's root through /proc/<pid>/root. The binary stays safe (asserted); the root does not. Run with
/// `--ignored` to see the attack succeed.
#[test]
#[ignore = "known limitation: the init is visible in a joined pid namespace before pivot_root (README, Security)"]
fn created_init_root_before_pivot_is_out_of_reach() {
    let (found, _result, host_file, v) = created_init_attack(true);
    let on_host = host_file.exists();
    let _ = std::fs::remove_file(&host_file);
    v.assert_unchanged();
    assert!(!on_host, "a file was created on the host's root: {found}");
}

/// Issue 10, item 4 / issue 13: `berth exec` resolves process.cwd inside the container's root like the init:
/// a cwd that is (or passes through) a symlink to /proc/self/fd/N is refused whatever N (no descriptor of berth
/// becomes the cwd), and `..` or an absolute symlink never climbs above the container's root.
#[test]
fn exec_cwd_cannot_leave_the_container_root() {
    let berth = Berth::new();
    let id = unique("esc-exec-cwd");
    let mut b = Bundle::new(&id);
    std::fs::write(b.rootfs().join("container-marker"), "").unwrap();
    for n in 3..12 {
        std::os::unix::fs::symlink(
            format!("/proc/self/fd/{n}"),
            b.rootfs().join(format!("fd{n}")),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("../../../../../../..", b.rootfs().join("up")).unwrap();
    b.args(&["sleep", "1000"]);
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    for n in 3..12 {
        for cwd in [format!("/fd{n}"), format!("/proc/self/fd/{n}")] {
            let out = berth
                .cmd()
                .args(["exec", "--cwd", &cwd, &id, "sh", "-c", "pwd; ls"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "exec --cwd {cwd} ran: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(err.contains("cwd") && err.contains(&id), "{err}");
        }
    }
    for cwd in ["/up", "/../../..", "/up/up/bin/.."] {
        let out = berth
            .cmd()
            .args(["exec", "--cwd", cwd, &id, "ls"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{cwd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listing.contains("container-marker"), "{cwd}: {listing}");
    }
    berth.ok(&["delete", "--force", &id]);
}

/// Issue 10, item 5: --preserve-fds is bounded by the descriptors berth was given; huge values (that once wrapped
/// 3+N around and passed every descriptor on) fail with one clear line, for create, run and exec, and leave
/// nothing behind.
#[test]
fn preserve_fds_beyond_the_open_descriptors_is_a_clear_error() {
    let berth = Berth::new();
    let id = unique("esc-pfds");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    let bundle = b.dir.to_str().unwrap().to_string();
    for n in ["2147483647", "2147483645", "4294967295", "1000000"] {
        // fd 3 is open (and inherited): only --preserve-fds 1 could be honoured.
        for cmd in ["create", "run", "exec"] {
            let new_id = unique("esc-pfds-new");
            let target = if cmd == "exec" {
                id.as_str()
            } else {
                new_id.as_str()
            };
            let mut args = vec![
                "--root",
                berth.root.to_str().unwrap(),
                cmd,
                "--preserve-fds",
                n,
            ];
            if cmd != "exec" {
                args.extend(["--bundle", &bundle]);
            }
            args.push(target);
            if cmd == "exec" {
                args.push("true");
            }
            let script = "exec 3</dev/null; exec \"$0\" \"$@\"";
            let out = Command::new("sh")
                .args(["-c", script, BERTH])
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            // runc's exec exits 255 when the process could not be run; create and run exit 1.
            let want = if cmd == "exec" { 255 } else { 1 };
            assert_eq!(
                out.status.code(),
                Some(want),
                "{cmd} --preserve-fds {n}: {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(
                err.contains(&format!("--preserve-fds {n}"))
                    && err.contains("not open")
                    && err.contains(target),
                "{err}"
            );
            // Refused before anything is made (state dir, cgroup, process).
            assert!(!berth.root.join(&new_id).exists(), "{cmd}: state left");
        }
    }
    berth.ok(&["delete", "--force", &id]);
}

/// Host directories a test made, removed when it ends (declared before the `Berth`, so that they outlive its
/// containers).
struct HostDirs(Vec<std::path::PathBuf>);

impl Drop for HostDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Issue 10, item 3: a read-only bind whose destination is a directory of a volume that another container races
/// with renameat2(RENAME_EXCHANGE), swapping that directory and a symlink to the volume's own mount point. A runtime
/// that looks the destination up again after the bind (to make it read-only) then finds the volume's mount instead:
/// the volume turns read-only and the bind stays writable. The bind must be read-only in every round, wherever the
/// destination resolved at the one instant berth looked it up (the directory, under either name, or through the
/// symlink, the volume's mount point), the volume's own mount must stay writable, and nothing may be written into
/// the bind's source.
#[test]
fn readonly_bind_in_a_raced_volume_is_readonly_in_every_round() {
    const ROUNDS: usize = 300;
    const BUDGET: Duration = Duration::from_secs(150);
    let dirs = HostDirs(vec![
        std::env::temp_dir().join(unique("berth-race-vol")),
        std::env::temp_dir().join(unique("berth-race-src")),
    ]);
    let (vol, src) = (&dirs.0[0], &dirs.0[1]);
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    std::os::unix::fs::symlink("/vol", vol.join("alt")).unwrap();
    std::fs::create_dir_all(src).unwrap();
    std::fs::write(src.join("marker"), "host").unwrap();
    let name_of = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().to_string();
    let (vol_name, src_name) = (name_of(vol), name_of(src));
    let berth = Berth::new();

    let volume =
        json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "rw"]});
    let mut attacker = Bundle::new(&unique("race-attacker"));
    std::fs::copy(swapper(), attacker.rootfs().join("bin/swap")).unwrap();
    attacker.edit(|c| c["mounts"].as_array_mut().unwrap().push(volume.clone()));
    attacker.args(&["/bin/swap", "/vol/sub", "/vol/alt", "200"]);
    let attacker_id = unique("race-attacker");
    berth.create_ok(&attacker, &attacker_id);
    berth.ok(&["start", &attacker_id]);

    let mut victim = Bundle::new(&unique("race-victim"));
    victim.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(volume.clone());
        mounts.push(
            json!({"destination": "/vol/sub", "type": "bind", "source": src,
                           "options": ["bind", "ro"]}),
        );
    });
    // Once started, the victim tries to write wherever the bind may be.
    victim.sh("for d in /vol/sub /vol/alt /vol; do echo pwned > $d/pwned; done 2>/dev/null; true");

    let allowed = ["/vol/sub", "/vol/alt", "/vol"];
    let started = Instant::now();
    let (mut made, mut refused) = (0, 0);
    let mut landed = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..ROUNDS {
        if started.elapsed() > BUDGET {
            break;
        }
        let id = format!("{}-{round}", unique("race-victim"));
        let out = berth.create(&victim, &id, &[]);
        if !out.status.success() {
            // The swap may make the destination vanish mid-lookup: a clean failure is fine, nothing may be left.
            refused += 1;
            assert!(
                !berth.root.join(&id).exists(),
                "round {round}: a failed create left state behind"
            );
            continue;
        }
        made += 1;
        let pid = berth.state(&id)["pid"].as_i64().unwrap();
        let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let mut binds = Vec::new();
        for line in info.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (root, point, opts) = (f[3], f[4], f[5]);
            if root.ends_with(&src_name) {
                binds.push((point.to_string(), opts.to_string()));
            }
            if root.ends_with(&vol_name) {
                assert!(
                    opts.split(',').any(|o| o == "rw"),
                    "round {round}: the volume's mount was made read-only instead: {line}"
                );
            }
        }
        assert_eq!(
            binds.len(),
            1,
            "round {round}: the bind's source is mounted {} times:\n{info}",
            binds.len()
        );
        let (point, opts) = &binds[0];
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "round {round}: the bind at {point} is writable ({opts})"
        );
        assert!(
            allowed.contains(&point.as_str()),
            "round {round}: the bind landed at {point}, outside where its destination could resolve"
        );
        *landed.entry(point.clone()).or_default() += 1;
        berth.ok(&["start", &id]);
        berth.wait_status(&id, "stopped");
        berth.ok(&["delete", &id]);
        let mut names: Vec<_> = std::fs::read_dir(src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["marker"],
            "round {round}: the container wrote into the bind's source"
        );
    }
    assert_eq!(
        berth.status(&attacker_id),
        "running",
        "the attacker stopped swapping before the rounds ended"
    );
    berth.ok(&["delete", "--force", &attacker_id]);
    eprintln!(
        "mount race: {made} creates, {refused} refused, in {:?}; the bind landed at {landed:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read_to_string(src.join("marker")).unwrap(), "host");
    assert!(
        made >= 200,
        "only {made} creates succeeded ({refused} refused): too few rounds to trust"
    );
}
