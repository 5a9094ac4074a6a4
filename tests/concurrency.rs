//! Concurrent invocations on one id never corrupt state, and a create killed at any point is fully undone by a
//! later `delete --force`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A berth invocation in the background, its stderr in a file: a pipe would be held open by a container init
/// that inherits it, and reading it would never end.
struct Running {
    child: Child,
    stderr: std::path::PathBuf,
}

fn spawn(berth: &Berth, args: &[&str]) -> Running {
    let stderr = std::env::temp_dir().join(unique("berth-stderr"));
    let child = berth
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Running { child, stderr }
}

struct Finished {
    success: bool,
    stderr: String,
}

impl Running {
    fn finish(mut self) -> Finished {
        let status = self.child.wait().unwrap();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let _ = std::fs::remove_file(&self.stderr);
        Finished {
            success: status.success(),
            stderr,
        }
    }
}

/// Live processes whose command line mentions `needle` (a forked init keeps berth's command line).
fn processes_mentioning(needle: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        if pid == std::process::id() as i64 {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) && alive(pid) {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn ten_concurrent_creates_one_winner_losers_touch_nothing() {
    let id = unique("race-create");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"]);
    let berth = Berth::new();
    let bundle = b.dir.to_str().unwrap().to_string();
    let kids: Vec<Running> = (0..10)
        .map(|_| spawn(&berth, &["create", "--bundle", &bundle, &id]))
        .collect();
    let results: Vec<_> = kids.into_iter().map(Running::finish).collect();
    let winners = results.iter().filter(|r| r.success).count();
    assert_eq!(winners, 1, "exactly one create must win");
    for r in results.iter().filter(|r| !r.success) {
        let err = &r.stderr;
        assert!(err.contains("already exists"), "{err}");
    }
    let st = berth.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert!(alive(pid));
    assert_eq!(
        processes_mentioning(&id),
        vec![pid],
        "only the winner's init may exist"
    );
    assert!(berth.cgroup_dirs(&id).iter().all(|d| d.exists()));
}

#[test]
fn five_concurrent_starts_one_winner_others_fail_at_once() {
    let id = unique("race-start");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"]);
    let berth = Berth::new();
    assert!(berth.create(&b, &id, &[]).status.success());
    let t0 = Instant::now();
    let kids: Vec<Running> = (0..5).map(|_| spawn(&berth, &["start", &id])).collect();
    let results: Vec<_> = kids.into_iter().map(Running::finish).collect();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "losers must not block"
    );
    assert_eq!(results.iter().filter(|r| r.success).count(), 1);
    for r in results.iter().filter(|r| !r.success) {
        let err = &r.stderr;
        assert!(
            err.contains("running") || err.contains("no longer waiting"),
            "{err}"
        );
    }
    assert_eq!(berth.status(&id), "running");
}

/// Polls `what` until it holds (bounded).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_start_killed_mid_way_leaves_the_program_running_and_the_next_start_refused() {
    let id = unique("start-killed");
    let mut b = Bundle::new(&id);
    b.sh("echo started; exec sleep 100");
    // The client is killed while the init runs this hook, that is after it received `Start`.
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["hooks"] = json!({"startContainer": [{
            "path": "/bin/busybox",
            "args": ["busybox", "sh", "-c", "touch /hook-ran; sleep 2"]
        }]});
    });
    let berth = Berth::new();
    berth.create_ok(&b, &id);
    let mut start = spawn(&berth, &["start", &id]);
    let marker = b.rootfs().join("hook-ran");
    eventually("the startContainer hook runs", || marker.exists());
    start.child.kill().unwrap();
    assert!(!start.finish().success);
    // The init goes on without its client: the hook ends and the program runs.
    eventually("the program runs", || {
        berth.stdout_of(&b, &id).contains("started")
    });
    // Nobody waits for start any more: a second start says so at once, and the container is running.
    let err = berth.fails(&["start", &id]);
    assert!(err.contains("no longer waiting for start"), "{err}");
    assert_eq!(berth.status(&id), "running");
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", "--force", &id]);
    assert_gone(&berth, &id, &cgroups, Some(pid));
}

#[test]
fn start_of_a_container_whose_init_died_fails_and_it_stays_stopped() {
    let id = unique("start-dead");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"]);
    let berth = Berth::new();
    berth.create_ok(&b, &id);
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the init is dead", || !alive(pid));
    let t0 = Instant::now();
    let err = berth.fails(&["start", &id]);
    assert!(t0.elapsed() < Duration::from_secs(5), "start must not wait");
    assert!(
        err.contains("cannot start a container that is stopped"),
        "{err}"
    );
    assert_eq!(berth.status(&id), "stopped");
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", &id]);
    assert_gone(&berth, &id, &cgroups, Some(pid));
}

#[test]
fn concurrent_force_deletes_all_end_cleanly() {
    let id = unique("race-delete");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"]);
    let berth = Berth::new();
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    let cgroups = berth.cgroup_dirs(&id);
    let kids: Vec<Running> = (0..5)
        .map(|_| spawn(&berth, &["delete", "--force", &id]))
        .collect();
    for k in kids {
        let r = k.finish();
        assert!(r.success, "{}", r.stderr);
    }
    assert_gone(&berth, &id, &cgroups, Some(pid));
}

#[test]
fn create_killed_at_any_point_is_undone_by_delete_force() {
    let berth = Berth::new();
    // Spread the kills over the whole create (which takes a few milliseconds here).
    for (i, delay_us) in [0u64, 200, 500, 1000, 1500, 2500, 4000, 6000, 9000, 15000]
        .iter()
        .enumerate()
    {
        let id = unique(&format!("killcreate{i}"));
        let mut b = Bundle::new(&id);
        b.args(&["sleep", "100"]);
        let mut child = berth
            .cmd()
            .args(["create", "--bundle", b.dir.to_str().unwrap(), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(*delay_us));
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let cgroups: Vec<_> = own_cgroup_dirs()
            .into_iter()
            .map(|d| d.join("berth-tests").join(&id))
            .collect();
        let out = berth.run(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // An orphaned init dies with its parent (PR_SET_PDEATHSIG); give the kernel a moment to reap it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_mentioning(&id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            processes_mentioning(&id),
            Vec::<i64>::new(),
            "{id}: process left"
        );
        assert_gone(&berth, &id, &cgroups, None);
    }
}
