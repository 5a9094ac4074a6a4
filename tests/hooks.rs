//! OCI hooks with real containers: each of the six points runs a busybox script that records its namespaces, its
//! stdin (the state), its args and env; the tests check when each ran, in which namespaces, and what a failing or
//! hanging hook does to the operation.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const RECORD: &str = r#"#!/bin/busybox sh
out=$1
shift
{
  for n in mnt pid net uts ipc; do echo "ns.$n=$(readlink /proc/self/ns/$n)"; done
  echo "args=$*"
  echo "env.HOOKVAR=$HOOKVAR"
  echo "stdin=$(cat)"
} > "$out"
"#;

const PHASES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Writes the recording script to the bundle (host path) and into the rootfs (for startContainer, whose path
/// resolves in the container).
fn install_script(b: &Bundle, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let host = b.dir.join(name);
    std::fs::write(&host, text).unwrap();
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).unwrap();
    let inner = b.rootfs().join(name);
    std::fs::write(&inner, text).unwrap();
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).unwrap();
    host
}

/// Where the hook of `phase` writes, as the hook sees it and as the test reads it.
fn out_paths(b: &Bundle, phase: &str) -> (String, PathBuf) {
    if phase == "startContainer" {
        (
            format!("/hook-{phase}.out"),
            b.rootfs().join(format!("hook-{phase}.out")),
        )
    } else {
        let p = b.dir.join(format!("hook-{phase}.out"));
        (p.to_str().unwrap().to_string(), p)
    }
}

fn hook(b: &Bundle, phase: &str, script: &Path, extra: Value) -> Value {
    let (inner_out, _) = out_paths(b, phase);
    let path = if phase == "startContainer" {
        format!("/{}", script.file_name().unwrap().to_str().unwrap())
    } else {
        script.to_str().unwrap().to_string()
    };
    let mut h = json!({
        "path": path,
        "args": ["record", inner_out, "x-arg"],
        "env": ["PATH=/bin:/usr/bin", format!("HOOKVAR=v-{phase}")]
    });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            h[k] = v;
        }
    }
    h
}

fn read_record(p: &Path) -> Option<(std::collections::BTreeMap<String, String>, Value)> {
    let text = std::fs::read_to_string(p).ok()?;
    let mut map = std::collections::BTreeMap::new();
    for l in text.lines() {
        if let Some((k, v)) = l.split_once('=') {
            map.insert(k.to_string(), v.to_string());
        }
    }
    let stdin: Value = serde_json::from_str(map.get("stdin")?).ok()?;
    Some((map, stdin))
}

#[test]
fn all_six_hooks_run_at_their_points_in_their_namespaces_with_state_on_stdin() {
    let id = unique("hooks-all");
    let mut b = Bundle::new(&id);
    // The startContainer hook writes its record inside the container.
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let script = install_script(&b, "record.sh", RECORD);
    b.args(&["sleep", "1000"]);
    let hooks: serde_json::Map<String, Value> = PHASES
        .iter()
        .map(|p| (p.to_string(), json!([hook(&b, p, &script, json!({}))])))
        .collect();
    b.edit(|c| c["hooks"] = Value::Object(hooks));
    let berth = Berth::new();
    berth.create_ok(&b, &id);
    let pid = berth.state(&id)["pid"].as_i64().unwrap();
    for p in ["prestart", "createRuntime", "createContainer"] {
        assert!(out_paths(&b, p).1.exists(), "{p} did not run during create");
    }
    for p in ["startContainer", "poststart", "poststop"] {
        assert!(!out_paths(&b, p).1.exists(), "{p} ran during create");
    }
    berth.ok(&["start", &id]);
    for p in ["startContainer", "poststart"] {
        assert!(out_paths(&b, p).1.exists(), "{p} did not run by start");
    }
    assert!(!out_paths(&b, "poststop").1.exists());
    let container_ns: Vec<(String, String)> = ["mnt", "net", "uts", "ipc", "pid"]
        .iter()
        .map(|k| {
            let l = std::fs::read_link(format!("/proc/{pid}/ns/{k}")).unwrap();
            (k.to_string(), l.to_string_lossy().to_string())
        })
        .collect();
    berth.ok(&["delete", "--force", &id]);
    assert!(
        out_paths(&b, "poststop").1.exists(),
        "poststop did not run by delete"
    );

    for phase in PHASES {
        let (rec, state) = read_record(&out_paths(&b, phase).1)
            .unwrap_or_else(|| panic!("{phase}: no or bad record"));
        let want_status = match phase {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(state["status"], want_status, "{phase}: {state}");
        assert_eq!(state["id"], json!(id), "{phase}");
        assert_eq!(
            state["bundle"],
            json!(b.dir.canonicalize().unwrap()),
            "{phase}"
        );
        if phase != "poststop" {
            assert_eq!(state["pid"], json!(pid), "{phase}");
        }
        assert_eq!(rec["args"], format!("x-arg"), "{phase}: args");
        assert_eq!(rec["env.HOOKVAR"], format!("v-{phase}"), "{phase}: env");
        let in_container = matches!(phase, "createContainer" | "startContainer");
        for (kind, theirs) in &container_ns {
            let got = &rec[&format!("ns.{kind}")];
            if in_container {
                // The hook is a child of the init: in its mount, net, uts and ipc namespaces (and its pid ns).
                assert_eq!(got, theirs, "{phase}: {kind} ns is not the container's");
            } else {
                assert_eq!(
                    got,
                    &host_ns(kind),
                    "{phase}: {kind} ns is not the runtime's"
                );
            }
        }
    }
}

/// A container whose only hook is `phase` running `script` with `extra` fields (e.g. a timeout).
fn with_one_hook(id: &str, phase: &str, text: &str, extra: Value) -> Bundle {
    let mut b = Bundle::new(id);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let script = install_script(&b, "hook.sh", text);
    b.args(&["sleep", "1000"]);
    let h = hook(&b, phase, &script, extra);
    b.edit(|c| c["hooks"] = json!({ phase: [h] }));
    b
}

fn cgroups_of(b: &Bundle) -> Vec<PathBuf> {
    own_cgroup_dirs()
        .iter()
        .map(|d| d.join(&b.cgroup))
        .collect()
}

#[test]
fn a_failing_create_time_hook_fails_create_and_leaves_nothing() {
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let id = unique("hooks-fail");
        let b = with_one_hook(&id, phase, "#!/bin/busybox sh\nexit 3\n", json!({}));
        let berth = Berth::new();
        let out = berth.create(&b, &id, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{phase}: {err}");
        assert!(
            err.contains(&format!("error running {phase} hook #0: "))
                && err.contains("hook.sh")
                && err.contains("exit status 3"),
            "{phase}: {err}"
        );
        assert_gone(&berth, &id, &cgroups_of(&b), None);
    }
}

/// A hook that leaves a process behind still writing to its stdout does not hold berth: once the hook itself has
/// exited, what is already in the pipe is read (bounded) and berth goes on.
#[test]
fn a_hook_whose_leftover_process_keeps_writing_does_not_hold_create() {
    let id = unique("hooks-writer");
    let b = with_one_hook(
        &id,
        "createRuntime",
        "#!/bin/busybox sh\n(while :; do echo more; done) &\nexit 0\n",
        json!({}),
    );
    let berth = Berth::new();
    let started = std::time::Instant::now();
    let out = berth.create(&b, &id, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "create took {:?}",
        started.elapsed()
    );
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn a_failing_start_container_hook_fails_start_and_stops_the_container() {
    let id = unique("hooks-sc");
    let b = with_one_hook(
        &id,
        "startContainer",
        "#!/bin/busybox sh\nexit 4\n",
        json!({}),
    );
    let berth = Berth::new();
    assert!(berth.create(&b, &id, &[]).status.success());
    let err = berth.fails(&["start", &id]);
    assert!(
        err.contains("startContainer") && err.contains("status 4"),
        "{err}"
    );
    assert!(!berth.stdout_of(&b, &id).contains("never"));
    berth.wait_status(&id, "stopped");
    let dirs = berth.cgroup_dirs(&id);
    berth.ok(&["delete", &id]);
    assert_gone(&berth, &id, &dirs, None);
}

#[test]
fn poststart_and_poststop_failures_are_only_logged() {
    let berth = Berth::new();
    for phase in ["poststart", "poststop"] {
        let id = unique("hooks-post");
        let mut b = with_one_hook(&id, phase, "#!/bin/busybox sh\nexit 5\n", json!({}));
        // The hook after the failing one still runs (runtime-tools' poststart_fail and poststop_fail).
        let record = install_script(&b, "record.sh", RECORD);
        let next = hook(&b, phase, &record, json!({}));
        b.edit(|c| c["hooks"][phase].as_array_mut().unwrap().push(next));
        let (_, record_out) = out_paths(&b, phase);
        assert!(berth.create(&b, &id, &[]).status.success());
        let out = berth.run(&["start", &id]);
        assert!(out.status.success(), "{phase}: start must succeed");
        if phase == "poststart" {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("warning") && err.contains("poststart"),
                "{err}"
            );
            assert!(
                record_out.exists(),
                "the poststart hook after the failed one did not run"
            );
        }
        assert_eq!(berth.status(&id), "running");
        let dirs = berth.cgroup_dirs(&id);
        let out = berth.run(&["delete", "--force", &id]);
        assert!(out.status.success(), "{phase}: delete must succeed");
        if phase == "poststop" {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("warning") && err.contains("poststop"), "{err}");
            assert!(
                record_out.exists(),
                "the poststop hook after the failed one did not run"
            );
        }
        assert_gone(&berth, &id, &dirs, None);
    }
}

#[test]
fn a_hook_that_hangs_past_its_timeout_is_killed_and_fails_create() {
    let id = unique("hooks-timeout");
    let marker = std::env::temp_dir().join(format!("{id}.hook-pid"));
    let text = format!(
        "#!/bin/busybox sh\necho $$ > {}\nexec sleep 60\n",
        marker.display()
    );
    let b = with_one_hook(&id, "prestart", &text, json!({"timeout": 1}));
    let berth = Berth::new();
    let start = Instant::now();
    let out = berth.create(&b, &id, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the timeout was not enforced"
    );
    assert!(
        err.contains("error running prestart hook #0")
            && err.contains("ran past specified timeout of 1.0s"),
        "{err}"
    );
    let hook_pid: i64 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&marker);
    assert!(!alive(hook_pid), "the hung hook was not killed");
    assert_gone(&berth, &id, &cgroups_of(&b), None);
}

#[test]
fn container_hooks_without_env_get_the_process_env_and_create_container_runs_in_the_rootfs() {
    // As runc: startContainer sees the program's environment (HOME included), createContainer the process's env
    // and the rootfs as its cwd. A hook with its own env gets exactly that.
    let id = unique("hook-env");
    let mut b = Bundle::new(&id);
    let create_out = b.dir.join("create.out");
    b.args(&["true"]).edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["env"] = json!(["PATH=/bin", "ONE=one", "HOME=", "ONE=two", "FOO=bar"]);
        c["hooks"] = json!({
            "createContainer": [
                {"path": "/bin/sh", "args": ["sh", "-c",
                    format!("{{ pwd; echo ONE=$ONE; env | grep ^HOME; }} > {}", create_out.display())]},
            ],
            "startContainer": [
                {"path": "/bin/sh", "args": ["sh", "-c", "echo ONE=$ONE FOO=$FOO HOME=$HOME > /start.out"]},
                {"path": "/bin/sh", "args": ["sh", "-c", "echo ONE=$ONE > /own.out"], "env": ["X=1"]},
            ],
        });
    });
    let berth = Berth::new();
    let (code, _, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    let created = std::fs::read_to_string(&create_out).unwrap();
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    // runc 1.1 on this host: the process's env as configured (HOME still empty) before pivot_root.
    assert_eq!(created, format!("{}\nONE=two\nHOME=\n", rootfs.display()));
    let started = std::fs::read_to_string(b.rootfs().join("start.out")).unwrap();
    assert_eq!(started, "ONE=two FOO=bar HOME=/root\n");
    let own = std::fs::read_to_string(b.rootfs().join("own.out")).unwrap();
    assert_eq!(own, "ONE=\n");
}

/// runc's hooks.bats "run [hook's argv is preserved]": a startContainer hook that fails under a foreground `run`
/// with a terminal (the init's stdio is the relayed pty) — what it wrote on stderr reaches the user, on berth's
/// error line (runc's `exit status 1, stdout: ..., stderr: ...`), and args[0] is passed as written.
#[test]
fn a_failing_hooks_output_is_in_the_error_even_under_a_relayed_terminal() {
    use common::tty::*;
    let berth = Berth::new();
    for args in [
        json!(["cat", "/nosuchfile"]),
        json!(["busybox", "cat", "/nosuchfile"]),
    ] {
        let id = unique("hooks-tty");
        let mut b = Bundle::new(&id);
        b.args(&["echo", "never"]).edit(|c| {
            c["process"]["terminal"] = json!(true);
            c["hooks"] = json!({"startContainer": [{"path": "/bin/busybox", "args": args}]});
        });
        let pty = TestPty::new(24, 80);
        let mut cmd = berth.cmd();
        cmd.args(["run", "--bundle", b.dir.to_str().unwrap(), &id]);
        let mut child = pty.spawn(&cmd);
        let text = read_until(&pty.master, "/nosuchfile");
        assert_ne!(wait_exit(&mut child, Duration::from_secs(20)), 0, "{text}");
        assert!(
            text.contains("error running startContainer hook #0: /bin/busybox: exit status 1")
                && text.contains("stderr: cat: can't open '/nosuchfile'"),
            "{args}: {text:?}"
        );
        assert!(!text.contains("never"), "{text:?}");
        assert!(!berth.root.join(&id).exists(), "run left {id} behind");
    }
}

/// As runc, what a hook writes is captured, not passed on: a createContainer hook's output (it runs in the init,
/// whose stdout is the container's) does not end up in the container's output, nor a prestart hook's on berth's.
#[test]
fn a_hooks_output_stays_out_of_the_containers_output() {
    let id = unique("hooks-quiet");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let script = install_script(
        &b,
        "hook.sh",
        "#!/bin/busybox sh\necho hook-out\necho hook-err >&2\n",
    );
    b.args(&["echo", "main"]);
    let h = hook(&b, "createContainer", &script, json!({}));
    let p = hook(&b, "prestart", &script, json!({}));
    b.edit(|c| c["hooks"] = json!({"createContainer": [h], "prestart": [p]}));
    let berth = Berth::new();
    let out = berth.create(&b, &id, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    berth.ok(&["start", &id]);
    berth.wait_status(&id, "stopped");
    assert_eq!(berth.stdout_of(&b, &id), "main\n");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("hook-"),
        "{out:?}"
    );
    berth.ok(&["delete", &id]);
}
