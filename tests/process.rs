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
        |b| chown_rootfs(b, MAPPED_ROOT),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "uidmap="), "0 100000 65536");
    assert_eq!(field(&out, "id="), "0");
    assert_ne!(field(&out, "user="), host_ns("user"));
}

#[test]
fn joining_another_containers_user_and_net_namespaces() {
    let berth = Berth::new();
    // A: a long-lived container with its own user namespace (the "pod sandbox").
    let a_id = unique("sandbox");
    let mut a = Bundle::new(&a_id);
    a.args(&["sleep", "1000"]).edit(with_user_ns);
    chown_rootfs(&a, MAPPED_ROOT);
    assert!(berth.create(&a, &a_id, &[]).status.success());
    let a_pid = berth.state(&a_id)["pid"].as_i64().unwrap();
    let a_user = std::fs::read_link(format!("/proc/{a_pid}/ns/user")).unwrap();
    let a_net = std::fs::read_link(format!("/proc/{a_pid}/ns/net")).unwrap();

    // B joins A's user and network namespaces by path and gets its own pid, mount, ipc and uts namespaces, which
    // must be owned by A's user namespace (else mounting proc for its new pid namespace would fail).
    let b_id = unique("member");
    let mut b = Bundle::new(&b_id);
    b.sh("echo user=$(readlink /proc/self/ns/user); echo net=$(readlink /proc/self/ns/net); \
          echo pid=$(readlink /proc/self/ns/pid); echo me=$$; echo map=$(cat /proc/self/uid_map | tr -s ' ')")
        .edit(|c| {
            let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
            for n in nss.iter_mut() {
                if n["type"] == "network" {
                    n["path"] = json!(format!("/proc/{a_pid}/ns/net"));
                }
            }
            nss.push(json!({"type": "user", "path": format!("/proc/{a_pid}/ns/user")}));
            c["mounts"].as_array_mut().unwrap().retain(|m| {
                m["destination"] != "/sys/fs/cgroup" && m["destination"] != "/sys"
            });
        });
    chown_rootfs(&b, MAPPED_ROOT);
    let (code, out, err) = berth.run_bundle(&b, &b_id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "user="), a_user.to_str().unwrap());
    assert_eq!(field(&out, "net="), a_net.to_str().unwrap());
    assert_ne!(field(&out, "pid="), host_ns("pid"));
    assert_eq!(
        field(&out, "me="),
        "1",
        "the forked init is pid 1 of its new pid namespace"
    );
    assert_eq!(field(&out, "map="), "0 100000 65536");
    assert!(!berth.root.join(&b_id).exists());
}

#[test]
fn new_user_namespace_with_a_joined_network_namespace() {
    let (code, out, err) = inside_bundle(
        "userjoin",
        "echo net=$(readlink /proc/self/ns/net); echo user=$(readlink /proc/self/ns/user); echo id=$(id -u)",
        |c| {
            with_user_ns(c);
            let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
            for n in nss.iter_mut() {
                if n["type"] == "network" {
                    n["path"] = json!(format!("/proc/{}/ns/net", std::process::id()));
                }
            }
            // sysfs belongs to the host's network namespace, which the new user namespace does not own.
            c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/sys");
        },
        |b| chown_rootfs(b, MAPPED_ROOT),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "net="), host_ns("net"));
    assert_ne!(field(&out, "user="), host_ns("user"));
    assert_eq!(field(&out, "id="), "0");
}

#[test]
fn new_time_namespace_with_boottime_offset() {
    let (code, out, err) = inside(
        "timens",
        "echo time=$(readlink /proc/self/ns/time); echo up=$(cut -d. -f1 /proc/uptime)",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_ne!(field(&out, "time="), host_ns("time"));
    let up: u64 = field(&out, "up=").parse().unwrap();
    let host_up: u64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        up >= host_up + 864000 - 5,
        "uptime {up} should be ten days ahead of {host_up}"
    );
}

#[test]
fn joined_pid_namespace_makes_the_program_a_member_of_it() {
    let berth = Berth::new();
    let a_id = unique("pidowner");
    let mut a = Bundle::new(&a_id);
    a.args(&["sleep", "1000"]);
    assert!(berth.create(&a, &a_id, &[]).status.success());
    let a_pid = berth.state(&a_id)["pid"].as_i64().unwrap();
    let a_pidns = std::fs::read_link(format!("/proc/{a_pid}/ns/pid")).unwrap();
    let b_id = unique("pidjoin");
    let mut b = Bundle::new(&b_id);
    b.sh("echo pidns=$(readlink /proc/self/ns/pid); echo me=$$")
        .edit(|c| {
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "pid" {
                    n["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
                }
            }
            // /proc of the joined namespace: mounting a fresh procfs is allowed and shows that namespace.
        });
    let (code, out, err) = berth.run_bundle(&b, &b_id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "pidns="), a_pidns.to_str().unwrap());
    assert_ne!(
        field(&out, "me="),
        "1",
        "pid 1 is the other container's init"
    );
}
