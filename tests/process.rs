//! The container process as seen from inside: namespaces, ids, capabilities, rlimits, umask, env, cwd, hostname.

mod common;

use common::*;
use serde_json::json;

/// Runs `script` in a fresh container built by `setup`, returning (exit code, stdout, stderr).
fn inside(
    name: &str,
    script: &str,
    setup: impl FnOnce(&mut serde_json::Value),
) -> (i32, String, String) {
    inside_bundle(name, script, setup, |_| {})
}

fn inside_bundle(
    name: &str,
    script: &str,
    setup: impl FnOnce(&mut serde_json::Value),
    prepare: impl FnOnce(&Bundle),
) -> (i32, String, String) {
    let id = unique(name);
    let mut b = Bundle::new(&id);
    b.sh(script).edit(setup);
    prepare(&b);
    let berth = Berth::new();
    berth.run_bundle(&b, &id)
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} missing in {out}"))
        .trim()
}

#[test]
fn every_new_namespace_differs_from_the_hosts_and_init_is_pid_1() {
    let (code, out, err) = inside(
        "ns",
        "for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; echo pid1=$$",
        |_| {},
    );
    assert_eq!(code, 0, "{err}");
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let inner = field(&out, &format!("{kind}="));
        assert_ne!(inner, host_ns(kind), "{kind} namespace is the host's");
        assert!(inner.starts_with(&format!("{kind}:[")), "{inner}");
    }
    assert_eq!(field(&out, "pid1="), "1");
}

#[test]
fn namespaces_joined_by_path_are_the_targets() {
    // Join the host's network and uts namespaces by path: the container must see exactly those.
    let (code, out, err) = inside(
        "nsjoin",
        "echo net=$(readlink /proc/self/ns/net); echo uts=$(readlink /proc/self/ns/uts)",
        |c| {
            c["hostname"] = json!(null);
            let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
            for n in nss.iter_mut() {
                if n["type"] == "network" {
                    n["path"] = json!(format!("/proc/{}/ns/net", std::process::id()));
                }
                if n["type"] == "uts" {
                    n["path"] = json!(format!("/proc/{}/ns/uts", std::process::id()));
                }
            }
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "net="), host_ns("net"));
    assert_eq!(field(&out, "uts="), host_ns("uts"));
}

#[test]
fn user_ids_groups_umask_env_and_cwd() {
    let (code, out, err) = inside(
        "ids",
        "echo id=$(id -u):$(id -g); echo groups=$(id -G); echo umask=$(umask); echo cwd=$(pwd); \
         echo foo=$FOO; echo home=$HOME",
        |c| {
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 23});
            c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
            c["process"]["cwd"] = json!("/work/dir");
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "id="), "1000:1000");
    let mut groups: Vec<&str> = field(&out, "groups=").split(' ').collect();
    groups.sort();
    assert_eq!(groups, ["10", "1000", "20"]);
    assert_eq!(field(&out, "umask="), "0027");
    assert_eq!(field(&out, "cwd="), "/work/dir", "a missing cwd is created");
    assert_eq!(field(&out, "foo="), "bar baz");
    assert_eq!(
        field(&out, "home="),
        "/home/user",
        "HOME comes from the container's /etc/passwd"
    );
}

fn cap_mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1 << c)))
}

#[test]
fn all_five_capability_sets_for_a_non_root_user() {
    // CAP_NET_BIND_SERVICE = 10, CAP_KILL = 5, CAP_CHOWN = 0, CAP_SYS_ADMIN = 21
    let (code, out, err) = inside("caps", "grep ^Cap /proc/self/status", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN", "CAP_SYS_ADMIN"],
            "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "ambient": ["CAP_NET_BIND_SERVICE"],
        });
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "CapBnd:"), cap_mask(&[10, 5, 0, 21]));
    // After execve of a non-setuid program by a non-root user: permitted = effective = ambient.
    assert_eq!(field(&out, "CapPrm:"), cap_mask(&[10]));
    assert_eq!(field(&out, "CapEff:"), cap_mask(&[10]));
    assert_eq!(field(&out, "CapInh:"), cap_mask(&[10, 5]));
    assert_eq!(field(&out, "CapAmb:"), cap_mask(&[10]));
}

#[test]
fn root_gets_exactly_the_configured_sets_and_no_new_privs() {
    let (code, out, err) = inside(
        "rootcaps",
        "grep -E '^(Cap|NoNewPrivs)' /proc/self/status",
        |c| {
            c["process"]["noNewPrivileges"] = json!(true);
            c["process"]["capabilities"] = json!({
                "bounding": ["CAP_KILL", "CAP_CHOWN"],
                "permitted": ["CAP_KILL"],
                "effective": ["CAP_KILL"],
            });
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "CapBnd:"), cap_mask(&[5, 0]));
    assert_eq!(field(&out, "CapPrm:"), cap_mask(&[5]));
    assert_eq!(field(&out, "CapEff:"), cap_mask(&[5]));
    assert_eq!(field(&out, "CapInh:"), cap_mask(&[]));
    assert_eq!(field(&out, "NoNewPrivs:"), "1");
}

#[test]
fn rlimits_hostname_domainname_and_oom_score() {
    let (code, out, err) = inside(
        "limits",
        "echo nofile=$(ulimit -n); echo hard=$(ulimit -H -n); echo host=$(hostname); \
         echo domain=$(cat /proc/sys/kernel/domainname); echo oom=$(cat /proc/self/oom_score_adj)",
        |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
            c["hostname"] = json!("box");
            c["domainname"] = json!("example.org");
            c["process"]["oomScoreAdj"] = json!(500);
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "nofile="), "123");
    assert_eq!(field(&out, "hard="), "456");
    assert_eq!(field(&out, "host="), "box");
    assert_eq!(field(&out, "domain="), "example.org");
    assert_eq!(field(&out, "oom="), "500");
}

#[test]
fn new_user_namespace_maps_ids() {
    let (code, out, err) = inside_bundle(
        "userns",
        "echo uidmap=$(cat /proc/self/uid_map | tr -s ' '); echo id=$(id -u); echo user=$(readlink /proc/self/ns/user)",
        |c| {
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // sysfs and cgroup mounts need privileges a fresh user namespace does not have over the host's net ns.
            let m = c["mounts"].as_array_mut().unwrap();
            m.retain(|m| m["destination"] != "/sys/fs/cgroup");
        },
        // The image belongs to the mapped root, as a real user-namespaced bundle's would.
        |b| {
            let st = std::process::Command::new("chown")
                .args(["-R", "100000:100000"])
                .arg(b.rootfs())
                .status()
                .unwrap();
            assert!(st.success());
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "uidmap="), "0 100000 65536");
    assert_eq!(field(&out, "id="), "0");
    assert_ne!(field(&out, "user="), host_ns("user"));
}
