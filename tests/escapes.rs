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
