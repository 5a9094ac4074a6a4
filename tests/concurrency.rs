//! Concurrent invocations on one id never corrupt state, and a create killed at any point is fully undone by a
//! later `delete --force`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

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
