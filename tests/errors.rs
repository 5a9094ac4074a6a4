//! Bad input: every failure is one line naming the container and what failed, exit 1, and nothing is left behind.

mod common;

use common::*;
use serde_json::json;

/// Creates `id` from `bundle` expecting failure; checks the message and that nothing was left.
fn create_fails(berth: &Berth, bundle: &std::path::Path, id: &str, want: &[&str]) -> String {
    create_fails_with(berth, &[], bundle, id, want)
}

#[test]
fn missing_bundle_config_and_rootfs() {
    let berth = Berth::new();
    let id = unique("nobundle");
    create_fails(
        &berth,
        std::path::Path::new("/nonexistent/bundle"),
        &id,
        &["/nonexistent/bundle"],
    );

    let id = unique("noconfig");
    let b = Bundle::new(&id);
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    create_fails(&berth, &b.dir, &id, &["config.json", "No such file"]);

    let id = unique("norootfs");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["root"]["path"] = json!("missing-rootfs"));
    create_fails(&berth, &b.dir, &id, &["missing-rootfs"]);
}

#[test]
fn malformed_and_non_config_json() {
    let berth = Berth::new();
    let id = unique("badjson");
    let b = Bundle::new(&id);
    std::fs::write(
        b.dir.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n}",
    )
    .unwrap();
    create_fails(&berth, &b.dir, &id, &["line 3", "column"]);
    for junk in ["null", "[]", "{}", "42", "\"str\"", "{\"ociVersion\": 1}"] {
        std::fs::write(b.dir.join("config.json"), junk).unwrap();
        create_fails(&berth, &b.dir, &id, &["config.json"]);
    }
    let mut v = b.config.clone();
    v["process"]["args"] = json!("sh");
    std::fs::write(
        b.dir.join("config.json"),
        serde_json::to_vec_pretty(&v).unwrap(),
    )
    .unwrap();
    create_fails(&berth, &b.dir, &id, &["invalid type", "line"]);
    let mut v = b.config.clone();
    v["ociVersion"] = json!("2.0.0");
    std::fs::write(b.dir.join("config.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    create_fails(&berth, &b.dir, &id, &["unsupported ociVersion"]);
}

#[test]
fn missing_root_empty_args_and_bad_ids() {
    let berth = Berth::new();
    let id = unique("noroot");
    let mut b = Bundle::new(&id);
    b.edit(|c| {
        c.as_object_mut().unwrap().remove("root");
    });
    create_fails(&berth, &b.dir, &id, &["root is missing"]);
    b.edit(|c| {
        c["root"] = json!({"path": "rootfs"});
        c["process"]["args"] = json!([]);
    });
    create_fails(&berth, &b.dir, &id, &["process.args"]);
    for bad in ["../escape", "a/b", ".hidden", "_x", "with space"] {
        let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), bad]);
        assert!(err.contains("invalid container id"), "{bad}: {err}");
        assert!(!berth.root.join(bad).exists());
    }
    assert!(!std::path::Path::new("/tmp/escape").exists());
    // An unknown flag is a usage error with runc's exit code 1.
    let out = berth.run(&["create", "--bogus", "x"]);
    assert_eq!(out.status.code(), Some(1));
}

type Edit = Box<dyn Fn(&mut serde_json::Value)>;

/// Issue 13: `process` is translated once, before anything exists; each refusal names its field in config.json.
#[test]
fn process_refusals_name_their_field() {
    let berth = Berth::new();
    let nofile = |soft: u64| json!({"type": "RLIMIT_NOFILE", "soft": soft, "hard": 64});
    let cases: [(&str, Edit); 4] = [
        (
            "process.capabilities.bounding[1] \"CAP_BOGUS\": unknown capability",
            Box::new(|c| {
                c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_BOGUS"])
            }),
        ),
        (
            "process.rlimits[1]: RLIMIT_NOFILE is listed twice (also process.rlimits[0])",
            Box::new(move |c| c["process"]["rlimits"] = json!([nofile(8), nofile(16)])),
        ),
        (
            "process.rlimits[0] RLIMIT_NOFILE: soft limit 65 is above the hard limit 64",
            Box::new(move |c| c["process"]["rlimits"] = json!([nofile(65)])),
        ),
        (
            "process.user.uid 4294967295: not a valid id",
            Box::new(|c| c["process"]["user"]["uid"] = json!(u32::MAX)),
        ),
    ];
    for (want, edit) in cases {
        let id = unique("procfield");
        let mut b = Bundle::new(&id);
        b.edit(|c| edit(c));
        create_fails(&berth, &b.dir, &id, &[want]);
    }
}

#[test]
fn nonexistent_program_fails_create() {
    let berth = Berth::new();
    let id = unique("noprog");
    let mut b = Bundle::new(&id);
    b.args(&["/bin/does-not-exist"]);
    create_fails(&berth, &b.dir, &id, &["/bin/does-not-exist"]);
    b.args(&["no-such-program-in-path"]);
    create_fails(
        &berth,
        &b.dir,
        &id,
        &["no-such-program-in-path", "not found"],
    );
}

#[test]
fn program_that_vanishes_before_start_fails_start() {
    let berth = Berth::new();
    let id = unique("vanish");
    let mut b = Bundle::new(&id);
    std::fs::copy(busybox(), b.rootfs().join("bin/prog")).unwrap();
    b.args(&["/bin/prog", "true"]);
    assert!(berth.create(&b, &id, &[]).status.success());
    // The program is removed between create and start: start must say so, not claim success.
    std::fs::remove_file(b.rootfs().join("bin/prog")).unwrap();
    let err = berth.fails(&["start", &id]);
    assert!(err.contains("/bin/prog") && err.contains(&id), "{err}");
    // runc's words (Go's lower-case errno text), which clients and runc's suite match.
    assert!(
        err.contains("exec /bin/prog: no such file or directory"),
        "{err}"
    );
    assert_eq!(berth.status(&id), "stopped");
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", &id]);
    assert_gone(&berth, &id, &cgroups, None);
}

#[test]
fn duplicate_id_is_refused_and_the_first_is_untouched() {
    let berth = Berth::new();
    let id = unique("dup");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "100"]);
    assert!(berth.create(&b, &id, &[]).status.success());
    let before = berth.state(&id);
    let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(berth.state(&id), before);
    assert!(alive(before["pid"].as_i64().unwrap()));
}

#[test]
fn rlimit_above_hard_limit_and_lower_oom_score_are_clear_errors() {
    let berth = Berth::new();
    let id = unique("rlimit");
    let mut b = Bundle::new(&id);
    // This machine (and CI) lacks CAP_SYS_RESOURCE: raising the hard limit must fail with a reason.
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(4)
                .map(|s| s.parse::<u64>().unwrap())
        })
        .unwrap();
    let has_sys_resource = {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let eff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
        let mask = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
        mask & (1 << 24) != 0
    };
    if has_sys_resource {
        skipped(
            "rlimit_above_hard_limit_and_lower_oom_score_are_clear_errors",
            "CAP_SYS_RESOURCE is held: nothing to refuse",
        );
        return;
    }
    b.edit(|c| {
        c["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}])
    });
    create_fails(&berth, &b.dir, &id, &["RLIMIT_NOFILE", "CAP_SYS_RESOURCE"]);
    b.edit(|c| {
        c["process"]["rlimits"] = json!([]);
        c["process"]["oomScoreAdj"] = json!(-1000);
    });
    create_fails(&berth, &b.dir, &id, &["oom_score_adj", "-1000"]);
}

#[test]
fn configs_that_are_huge_or_odd_never_panic() {
    let berth = Berth::new();
    let id = unique("huge");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["hostname"] = json!("h".repeat(1 << 20)));
    create_fails(&berth, &b.dir, &id, &["hostname"]);

    // Thousands of environment variables work.
    b.edit(|c| {
        c["hostname"] = json!("berth");
        let mut env: Vec<String> = (0..5000).map(|i| format!("V{i}=x{i}")).collect();
        env.push("PATH=/bin".into());
        c["process"]["env"] = json!(env);
        c["process"]["args"] = json!(["sh", "-c", "echo $V4999; env | wc -l"]);
    });
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "x4999");
    assert!(lines[1].trim().parse::<u32>().unwrap() >= 5001);

    // Thousands of mounts: they work (or fail cleanly), never a panic, never a leftover.
    let id2 = unique("mounts");
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin"]);
        c["process"]["args"] = json!(["sh", "-c", "grep -c /many/ /proc/self/mountinfo"]);
        let m = c["mounts"].as_array_mut().unwrap();
        for i in 0..2000 {
            m.push(json!({"destination": format!("/many/{i}"), "type": "tmpfs", "source": "tmpfs", "options": ["size=4k"]}));
        }
    });
    let (code, out, err) = berth.run_bundle(&b, &id2);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "2000");
    assert!(!berth.root.join(&id2).exists());
}

#[test]
fn start_kill_delete_of_unknown_containers() {
    let berth = Berth::new();
    for args in [
        vec!["start", "nope"],
        vec!["state", "nope"],
        vec!["kill", "nope"],
        // containerd's shim sends this after every exit; "does not exist" is what it reads as "already gone".
        vec!["kill", "--all", "nope", "9"],
        vec!["delete", "nope"],
    ] {
        let err = berth.fails(&args);
        assert!(
            err.contains("nope") && err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
    // delete --force of a container that does not exist succeeds quietly, like runc.
    berth.ok(&["delete", "--force", "nope"]);
    let err = berth.fails(&["kill", "x", "NOTASIGNAL"]);
    assert!(err.contains("NOTASIGNAL"), "{err}");
}
