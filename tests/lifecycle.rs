//! The OCI lifecycle with real containers: create → start → state → kill → delete, `run`, exit codes, pid files,
//! and that nothing is left behind.

mod common;

use common::*;
use serde_json::json;

#[test]
fn run_returns_the_exit_code_and_output() {
    let id = unique("run-exit");
    let mut b = Bundle::new(&id);
    b.sh("echo out-$(hostname); exit 7");
    let berth = Berth::new();
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out.trim(), "out-berth");
    assert!(
        !berth.root.join(&id).exists(),
        "run must delete the container"
    );
}

#[test]
fn run_reports_death_by_signal_as_128_plus_n() {
    let id = unique("run-sig");
    let mut b = Bundle::new(&id);
    // Without a pid namespace of its own, so that the kernel lets the program kill itself (a pid-namespace init is
    // immune to SIGKILL from inside).
    b.sh("kill -9 $$").edit(|c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "pid");
    });
    let berth = Berth::new();
    let (code, _, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 128 + 9, "stderr: {err}");
}

#[test]
fn create_start_state_kill_delete() {
    let id = unique("life");
    let mut b = Bundle::new(&id);
    b.sh("echo started; exec sleep 1000");
    let berth = Berth::new();
    let pid_file = b.dir.join("pid");
    let out = berth.create(&b, &id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let st = berth.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["bundle"], json!(b.dir.canonicalize().unwrap()));
    assert_eq!(st["rootfs"], json!(b.rootfs().canonicalize().unwrap()));
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    assert!(st.get("owner").is_some());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert!(alive(pid));
    assert_eq!(
        berth.stdout_of(&b, &id),
        "",
        "the program must not run before start"
    );

    berth.ok(&["start", &id]);
    assert_eq!(berth.status(&id), "running");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while berth.stdout_of(&b, &id).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(berth.stdout_of(&b, &id), "started\n");

    let err = berth.fails(&["start", &id]);
    assert!(err.contains(&id) && err.contains("running"), "{err}");
    let err = berth.fails(&["delete", &id]);
    assert!(err.contains(&id) && err.contains("not stopped"), "{err}");

    let cgroups = berth.cgroup_dirs(&id);
    assert!(!cgroups.is_empty() && cgroups.iter().all(|d| d.exists()));
    berth.ok(&["kill", &id, "KILL"]);
    berth.wait_status(&id, "stopped");
    assert_eq!(berth.state(&id)["pid"], 0);
    let err = berth.fails(&["kill", &id, "TERM"]);
    assert!(err.contains("not running"), "{err}");
    let err = berth.fails(&["start", &id]);
    assert!(err.contains("stopped"), "{err}");

    berth.ok(&["delete", &id]);
    assert_gone(&berth, &id, &cgroups, Some(pid));
    let err = berth.fails(&["state", &id]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn delete_force_kills_a_running_container_and_its_cgroup() {
    let id = unique("force");
    let mut b = Bundle::new(&id);
    b.sh("sleep 1000 & exec sleep 1000");
    let berth = Berth::new();
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", "--force", &id]);
    assert_gone(&berth, &id, &cgroups, Some(pid));
}
