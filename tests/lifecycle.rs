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
    // runc's exact words: containerd's shim reads them as "already gone" (other words make it retry forever).
    let err = berth.fails(&["kill", &id, "TERM"]);
    assert!(err.contains("container not running"), "{err}");
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

#[test]
fn json_log_lines_carry_the_error_for_containerd() {
    let berth = Berth::new();
    let id = unique("jsonlog");
    let b = Bundle::new(&id);
    std::fs::write(b.dir.join("config.json"), "{ not json").unwrap();
    let log = b.dir.join("log.json");
    let out = berth
        .cmd()
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
        ])
        .arg(&b.dir)
        .arg(&id)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    let msg = line["msg"].as_str().unwrap();
    assert!(msg.contains(&id) && msg.contains("config.json"), "{msg}");
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    // The error is also one plain line on stderr for people.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn version_and_spec() {
    let berth = Berth::new();
    let v = berth.ok(&["--version"]);
    assert!(v.starts_with("berth version "), "{v}");
    assert!(v.contains("\ncommit: ") && v.contains("\nspec: 1."), "{v}");
    assert_eq!(berth.ok(&["-v"]), v);

    let dir = std::env::temp_dir().join(unique("spec"));
    std::fs::create_dir_all(&dir).unwrap();
    berth.ok(&["spec", "--bundle", dir.to_str().unwrap()]);
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["process"]["args"], json!(["sh"]));
    let err = berth.fails(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(err.contains("exists"), "{err}");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    berth.ok(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()]);
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(c["linux"]["uidMappings"].is_array());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Creates and starts `script` without a pid namespace of its own (its init an ordinary process) and waits until its
/// cgroup holds `n` processes; returns the id and their pids.
fn started_without_pid_ns(berth: &Berth, name: &str, script: &str, n: usize) -> (String, Vec<i64>) {
    let id = unique(name);
    let mut b = Bundle::new(&id);
    b.sh(script).edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    let pids_dir = berth
        .cgroup_dirs(&id)
        .into_iter()
        .find(|d| d.join("pids.max").exists())
        .unwrap();
    let procs = || -> Vec<i64> {
        std::fs::read_to_string(pids_dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while procs().len() < n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let all = procs();
    assert_eq!(all.len(), n, "{all:?}");
    (id, all)
}

/// Whether every process of `pids` is gone (dead; a zombie counts as gone) within 5 s.
fn all_gone_soon(pids: &[i64]) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    pids.iter().all(|p| !alive(*p))
}

/// runc ≥ 1.2's kill.bats "[host pidns]" and "[host pidns + init gone]": without its own pid namespace nothing
/// takes a container's other processes with its init, so `kill ID KILL` (no --all) goes to its whole cgroup, and
/// still does once the init is gone (then the container is stopped, and the kill succeeds).
#[test]
fn sigkill_without_a_pid_namespace_reaches_the_whole_cgroup() {
    for init_gone in [false, true] {
        let berth = Berth::new();
        // Three children and the init: four processes, none of which dies with another.
        let script = "sleep 1000 & sleep 1000 & sleep 1000 & exec sleep 1000";
        let (id, all) = started_without_pid_ns(&berth, "hostpid-kill", script, 4);
        if init_gone {
            let init = berth.state(&id)["pid"].as_i64().unwrap();
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(init as i32),
                nix::sys::signal::SIGKILL,
            )
            .unwrap();
            berth.wait_status(&id, "stopped");
        }
        berth.ok(&["kill", &id, "KILL"]);
        assert!(
            all_gone_soon(&all),
            "init gone {init_gone}: left some of {all:?}"
        );
        berth.wait_status(&id, "stopped");
        berth.ok(&["delete", &id]);
    }
}

#[test]
fn kill_by_number_and_kill_all_reach_every_process() {
    let berth = Berth::new();
    // Without a pid namespace the init is an ordinary process: the signal must reach every member of the cgroup.
    let (id, all) = started_without_pid_ns(&berth, "killall", "sleep 1000 & sleep 1000 & wait", 3);
    berth.ok(&["kill", "--all", &id, "9"]);
    assert!(all_gone_soon(&all), "kill --all left some of {all:?}");
    berth.wait_status(&id, "stopped");
}

#[test]
fn run_detached_leaves_a_running_container_and_pid_file() {
    let berth = Berth::new();
    let id = unique("detach");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    let pid_file = b.dir.join("pid");
    let out = berth
        .cmd()
        .args([
            "run",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--bundle",
        ])
        .arg(&b.dir)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let st = berth.state(&id);
    assert_eq!(st["status"], "running");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        st["pid"].to_string()
    );
    let list = berth.ok(&["list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("running")),
        "{list}"
    );
    let json_list: serde_json::Value =
        serde_json::from_str(&berth.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json_list[0]["id"], json!(id));
    assert_eq!(berth.ok(&["list", "-q"]).trim(), id);
}

#[test]
fn preserve_fds_passes_exactly_the_extra_descriptors() {
    let berth = Berth::new();
    let id = unique("fds");
    let mut b = Bundle::new(&id);
    std::fs::write(b.dir.join("secret"), "passed-through\n").unwrap();
    // fd 3 is preserved, fd 4 (also open in the caller, not close-on-exec) must not reach the container.
    b.sh("cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let script = format!(
        "exec 3<{dir}/secret 4<{dir}/secret; {berth} --root {root} run --preserve-fds 1 --bundle {dir} {id}",
        dir = b.dir.display(),
        berth = BERTH,
        root = berth.root.display(),
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("passed-through"));
    // ls itself opens the directory it lists (one more fd above 3).
    let fds: Vec<u32> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(&fds[..4], &[0, 1, 2, 3], "{fds:?}");
    assert!(
        fds.len() == 5,
        "only stdio, fd 3 and ls's own directory fd: {fds:?}"
    );
}

#[test]
fn no_pivot_runs_the_container_in_its_rootfs() {
    let berth = Berth::new();
    let id = unique("nopivot");
    let mut b = Bundle::new(&id);
    // The root mount is the bundle's rootfs, and /etc/passwd is the container's.
    b.sh("awk '$5==\"/\" {print $4}' /proc/self/mountinfo; grep -c '^user:' /etc/passwd");
    let out = berth
        .cmd()
        .args(["run", "--no-pivot", "--bundle"])
        .arg(&b.dir)
        .arg(&id)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, [b.rootfs().to_str().unwrap(), "1"], "{stdout}");
}

#[test]
fn poststart_and_poststop_hooks_run_from_start_and_delete() {
    let berth = Berth::new();
    let id = unique("hookrun");
    let mut b = Bundle::new(&id);
    let log = b.dir.join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name}:$(grep -o '\"status\":\"[a-z]*\"' ) >> {}", log.display())]});
    b.args(&["sleep", "1000"]).edit(|c| {
        c["hooks"] = json!({"poststart": [hook("poststart")], "poststop": [hook("poststop")]})
    });
    assert!(berth.create(&b, &id, &[]).status.success());
    berth.ok(&["start", &id]);
    berth.ok(&["delete", "--force", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "poststart:\"status\":\"running\"",
            "poststop:\"status\":\"stopped\""
        ],
        "{text}"
    );
}

#[test]
fn kill_all_of_a_stopped_container_succeeds_and_kills_what_is_left_in_its_cgroup() {
    let berth = Berth::new();
    let id = unique("killleft");
    let mut b = Bundle::new(&id);
    // No pid namespace of its own: the background sleep outlives the init, in the container's cgroup.
    b.sh("sleep 1000 & exit 0").edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
    berth.create_ok(&b, &id);
    let pids_dir = berth
        .cgroup_dirs(&id)
        .into_iter()
        .find(|d| d.join("pids.max").exists())
        .unwrap();
    berth.ok(&["start", &id]);
    berth.wait_status(&id, "stopped");
    let procs: Vec<i64> = std::fs::read_to_string(pids_dir.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(
        procs.len(),
        1,
        "only the background sleep should be left: {procs:?}"
    );
    let left = procs[0];
    assert!(
        alive(left),
        "the background process should outlive the init"
    );

    // Only SIGKILL sweeps without --all (sigkill_without_a_pid_namespace_reaches_the_whole_cgroup).
    let err = berth.fails(&["kill", &id, "TERM"]);
    assert!(err.contains("container not running"), "{err}");
    assert!(
        alive(left),
        "kill TERM without --all must not sweep the cgroup"
    );

    berth.ok(&["kill", "--all", &id, "KILL"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(left) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!alive(left), "kill --all left pid {left} in the cgroup");
    // Again, with nothing left: still a success (containerd's shim sends it after every exit).
    berth.ok(&["kill", "--all", &id, "KILL"]);
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", &id]);
    assert_gone(&berth, &id, &cgroups, None);
}

/// runc's delete.bats "[host pidns + init gone]" (runc issue 4047): a container without its own pid namespace whose
/// init was killed from outside is stopped, yet its other processes live on in its cgroup; `delete` and
/// `delete --force` both kill them, remove the cgroup and the state, and succeed.
#[test]
fn delete_of_a_host_pidns_container_whose_init_is_gone_kills_the_rest() {
    let berth = Berth::new();
    for force in [false, true] {
        let id = unique("delgone");
        let mut b = Bundle::new(&id);
        b.args(&["sleep", "1000"]).edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "pid");
        });
        berth.create_ok(&b, &id);
        berth.ok(&["start", &id]);
        for _ in 0..3 {
            // Its own stdio: the caller's pipes would stay open as long as it lives.
            berth.ok(&[
                "exec",
                "-d",
                &id,
                "sh",
                "-c",
                "exec sleep 1000 </dev/null >/dev/null 2>&1",
            ]);
        }
        let cgroups = berth.cgroup_dirs(&id);
        let pids_dir = cgroups
            .iter()
            .find(|d| d.join("pids.max").exists())
            .unwrap()
            .clone();
        let init = berth.state(&id)["pid"].as_i64().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(init as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        berth.wait_status(&id, "stopped");
        let left: Vec<i64> = std::fs::read_to_string(pids_dir.join("cgroup.procs"))
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(
            left.len(),
            3,
            "the exec'd sleeps outlive the init: {left:?}"
        );
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(&id);
        berth.ok(&args);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while left.iter().any(|p| alive(*p)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_gone(&berth, &id, &cgroups, None);
        for p in &left {
            assert!(!alive(*p), "force {force}: delete left pid {p}");
        }
    }
}

#[test]
fn a_systemd_form_cgroups_path_is_one_literal_directory_with_cgroupfs() {
    // containerd hands a `*.slice` cgroup parent over as slice:prefix:name even with the cgroupfs driver; runc's
    // cgroupfs manager makes a directory of that very name (relative: under our own cgroup).
    let berth = Berth::new();
    let id = unique("slicepath");
    let name = format!("{id}.slice:berth-tests:{id}");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["cgroupsPath"] = serde_json::json!(name);
    });
    berth.create_ok(&b, &id);
    let cgroups = berth.cgroup_dirs(&id);
    assert!(!cgroups.is_empty());
    let own = own_cgroup_dirs();
    for d in &cgroups {
        assert!(d.exists(), "{}", d.display());
        assert_eq!(d.file_name().unwrap().to_str().unwrap(), name);
        assert!(
            own.iter().any(|o| d.parent() == Some(o.as_path())),
            "{} is not directly under one of our own cgroups {own:?}",
            d.display()
        );
    }
    berth.ok(&["delete", "--force", &id]);
    assert_gone(&berth, &id, &cgroups, None);
}
