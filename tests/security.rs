//! Capabilities (the five sets, root and non-root) and LSM settings on a host without AppArmor/SELinux.

mod common;

use common::*;
use serde_json::{json, Value};

const BOUNDING: [&str; 5] = [
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_AUDIT_WRITE",
];
const PERMITTED: [&str; 3] = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"];
const EFFECTIVE: [&str; 2] = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
const INHERITABLE: [&str; 2] = ["CAP_KILL", "CAP_CHOWN"];
const AMBIENT: [&str; 1] = ["CAP_KILL"];

fn caps_config(c: &mut Value, uid: u32) {
    c["process"]["user"] = json!({"uid": uid, "gid": uid});
    c["process"]["noNewPrivileges"] = json!(true);
    set_caps(
        c,
        &BOUNDING,
        &PERMITTED,
        &EFFECTIVE,
        Some(&INHERITABLE),
        Some(&AMBIENT),
    );
}

/// Before exec (the init waiting for start) the five sets are exactly the configured ones, for root and for uid
/// 1000 (keep-caps carried them over the uid switch). After exec the kernel's rules apply: root gains bounding ∪
/// inheritable in permitted/effective, capped by noNewPrivileges at what it had; a non-root program keeps exactly
/// its ambient set.
#[test]
fn capability_sets_exact_for_root_and_non_root() {
    let berth = Berth::new();
    for uid in [0u32, 1000] {
        let id = unique("sec-caps");
        let mut b = Bundle::new(&id);
        b.args(&["cat", "/proc/self/status"])
            .edit(|c| caps_config(c, uid));
        let out = berth.create(&b, &id, &[]);
        assert!(
            out.status.success(),
            "uid {uid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = berth.state(&id)["pid"].as_i64().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert_eq!(
            cap_sets(&status),
            [
                cap_mask(&INHERITABLE),
                cap_mask(&PERMITTED),
                cap_mask(&EFFECTIVE),
                cap_mask(&BOUNDING),
                cap_mask(&AMBIENT)
            ],
            "uid {uid} before exec (inh, prm, eff, bnd, amb)"
        );
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid_line
                .split_whitespace()
                .skip(1)
                .all(|u| u == uid.to_string()),
            "{uid_line}"
        );

        berth.ok(&["start", &id]);
        berth.wait_status(&id, "stopped");
        let inside = berth.stdout_of(&b, &id);
        let after = cap_sets(&inside);
        let want = if uid == 0 {
            // Root's exec would raise permitted to bounding ∪ inheritable, but noNewPrivileges (the default
            // config's) caps it at what permitted was; effective becomes all of permitted.
            [
                cap_mask(&INHERITABLE),
                cap_mask(&PERMITTED),
                cap_mask(&PERMITTED),
                cap_mask(&BOUNDING),
                cap_mask(&AMBIENT),
            ]
        } else {
            [
                cap_mask(&INHERITABLE),
                cap_mask(&AMBIENT),
                cap_mask(&AMBIENT),
                cap_mask(&BOUNDING),
                cap_mask(&AMBIENT),
            ]
        };
        assert_eq!(after, want, "uid {uid} after exec, read inside");
        berth.ok(&["delete", &id]);
    }
}

/// A name no kernel knows is an error (the runtime spec requires it; runtime-tools' process_capabilities_fail),
/// reported before anything is created.
#[test]
fn unknown_capability_is_an_error() {
    let berth = Berth::new();
    let id = unique("sec-badcap");
    let mut b = Bundle::new(&id);
    b.edit(|c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_TEST"))
    });
    let out = berth.create(&b, &id, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("CAP_TEST"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!berth.root.join(&id).exists());
}

/// On a host without AppArmor or SELinux, a profile or a process label is a clear error (runc fails too); a
/// mount label is ignored (as runc does).
#[test]
fn lsm_settings_without_the_lsm() {
    if std::path::Path::new("/sys/kernel/security/apparmor").exists()
        || std::path::Path::new("/sys/fs/selinux/enforce").exists()
    {
        skipped(
            "lsm_settings_without_the_lsm",
            "this host has AppArmor or SELinux",
        );
        return;
    }
    let berth = Berth::new();
    for (edit, expect) in [
        (
            json!({"process": {"apparmorProfile": "acme_secure_profile"}}),
            "AppArmor is not enabled",
        ),
        (
            json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}),
            "SELinux is not enabled",
        ),
    ] {
        let id = unique("sec-lsm");
        let mut b = Bundle::new(&id);
        b.edit(|c| {
            for (section, kv) in edit.as_object().unwrap() {
                for (k, v) in kv.as_object().unwrap() {
                    c[section][k] = v.clone();
                }
            }
        });
        let out = berth.create(&b, &id, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{edit}");
        assert!(err.contains(expect), "{err}");
        assert!(!berth.root.join(&id).exists());
    }
    // exec shares the init's process setup: the same settings through its flags fail the same way.
    let id = unique("sec-lsm-exec");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    for (flag, value, expect) in [
        (
            "--apparmor",
            "acme_secure_profile",
            "AppArmor is not enabled",
        ),
        (
            "--process-label",
            "system_u:system_r:container_t:s0",
            "SELinux is not enabled",
        ),
    ] {
        let err = berth.fails(&["exec", flag, value, &id, "true"]);
        assert!(
            err.contains(expect) && err.contains(&id),
            "exec {flag}: {err}"
        );
    }
    berth.ok(&["delete", "--force", &id]);
    let id = unique("sec-mountlabel");
    let mut b = Bundle::new(&id);
    b.sh("echo ok")
        .edit(|c| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0"));
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
}

/// oom_score_adj reaches a container in a new user namespace too (the init cannot write its own /proc there once
/// non-dumpable: `create` writes it from the host).
#[test]
fn oom_score_adj_in_a_user_namespace() {
    let berth = Berth::new();
    let id = unique("sec-oom-userns");
    let mut b = Bundle::new(&id);
    b.sh("cat /proc/self/oom_score_adj").edit(|c| {
        c["process"]["oomScoreAdj"] = json!(123);
        with_user_ns(c);
        // sysfs needs privileges a fresh user namespace does not have over the host's net ns.
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "sysfs");
    });
    chown_rootfs(&b, MAPPED_ROOT);
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!((code, out.trim()), (0, "123"), "{err}");
}
