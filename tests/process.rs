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

/// runc's userns.bats "join external namespaces [wrong userns owner]": a joined user namespace and a joined
/// network namespace it does not own (the host's user namespace does). Inside that user namespace berth has no
/// right to setns into the network namespace, so it joins it first, as runc does.
#[test]
fn joining_a_user_namespace_and_a_network_namespace_it_does_not_own() {
    let berth = Berth::new();
    let a_id = unique("ns-owner");
    let mut a = Bundle::new(&a_id);
    a.args(&["sleep", "1000"]).edit(with_user_ns);
    chown_rootfs(&a, MAPPED_ROOT);
    assert!(berth.create(&a, &a_id, &[]).status.success());
    let a_pid = berth.state(&a_id)["pid"].as_i64().unwrap();
    // A network namespace of the host's user namespace, held by a process of the test's.
    let mut holder = std::process::Command::new("unshare")
        .args(["-n", "sleep", "1000"])
        .spawn()
        .unwrap();
    let net_path = format!("/proc/{}/ns/net", holder.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_link(&net_path).ok() == std::fs::read_link("/proc/self/ns/net").ok()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let want_net = std::fs::read_link(&net_path).unwrap();
    let b_id = unique("ns-foreign");
    let mut b = Bundle::new(&b_id);
    b.sh("echo user=$(readlink /proc/self/ns/user); echo net=$(readlink /proc/self/ns/net)")
        .edit(|c| {
            let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
            for n in nss.iter_mut() {
                if n["type"] == "network" {
                    n["path"] = json!(net_path);
                }
            }
            nss.push(json!({"type": "user", "path": format!("/proc/{a_pid}/ns/user")}));
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys/fs/cgroup" && m["destination"] != "/sys");
        });
    chown_rootfs(&b, MAPPED_ROOT);
    let (code, out, err) = berth.run_bundle(&b, &b_id);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        field(&out, "user="),
        std::fs::read_link(format!("/proc/{a_pid}/ns/user"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(field(&out, "net="), want_net.to_str().unwrap());
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

/// Field `n` (1-based, as proc(5) numbers them) of a /proc/<pid>/stat line.
fn stat_field(line: &str, n: usize) -> String {
    let rest = &line[line.rfind(')').expect("stat has (comm)") + 2..];
    rest.split(' ').nth(n - 3).unwrap().to_string()
}

fn exec_in(berth: &Berth, args: &[&str]) -> (i32, String, String) {
    captured(
        berth
            .cmd()
            .arg("exec")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
}

/// A created-and-started container sleeping, configured by `setup`.
fn sleeping(
    berth: &Berth,
    name: &str,
    setup: impl FnOnce(&mut serde_json::Value),
) -> (String, Bundle) {
    let id = unique(name);
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]).edit(setup);
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    (id, b)
}

#[test]
fn scheduler_policy_and_nice_reach_the_init_its_children_and_exec() {
    // SCHED_BATCH = 3; the spec's flag name must be accepted (oci-spec spells it differently).
    let berth = Berth::new();
    let (id, _b) = sleeping(&berth, "sched", |c| {
        c["process"]["scheduler"] =
            json!({"policy": "SCHED_BATCH", "nice": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    });
    let (code, out, err) = exec_in(
        &berth,
        &[&id, "sh", "-c", "cat /proc/1/stat; cat /proc/self/stat"],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for (who, line) in [("init", lines[0]), ("exec child", lines[1])] {
        assert_eq!(stat_field(line, 41), "3", "{who}: policy in {line}");
        assert_eq!(stat_field(line, 19), "7", "{who}: nice in {line}");
    }
}

#[test]
fn bad_scheduler_combinations_are_refused_before_anything_is_made() {
    let berth = Berth::new();
    for (sched, want) in [
        (
            json!({"policy": "SCHED_OTHER", "priority": 5}),
            "process.scheduler.priority",
        ),
        (
            json!({"policy": "SCHED_BATCH", "nice": 40}),
            "process.scheduler.nice",
        ),
        (json!({"policy": "SCHED_NOPE"}), "SCHED_NOPE"),
    ] {
        let id = unique("badsched");
        let mut b = Bundle::new(&id);
        b.edit(|c| c["process"]["scheduler"] = sched);
        let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(err.contains(want), "{err}");
        assert!(!berth.root.join(&id).exists(), "state dir left behind");
    }
}

/// SCHED_DEADLINE needs the process's CPUs to span its whole root domain: with linux.resources.cpu.cpus limiting
/// them the kernel says EPERM, which berth reports in runc's words; nothing is left behind.
#[test]
fn deadline_scheduler_with_limited_cpus_is_refused_in_runcs_words() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        skipped(
            "deadline_scheduler_with_limited_cpus_is_refused_in_runcs_words",
            "one CPU: cpus \"0\" spans the whole root domain",
        );
        return;
    }
    let berth = Berth::new();
    let id = unique("dlsched");
    let mut b = Bundle::new(&id);
    b.edit(|c| {
        c["linux"]["resources"]["cpu"] = json!({"cpus": "0"});
        c["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE", "nice": 19, "runtime": 42000,
            "deadline": 1000000, "period": 1000000});
    });
    let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("process scheduler can't be used together with AllowedCPUs"),
        "{err}"
    );
    assert!(!berth.root.join(&id).exists(), "state dir left behind");
}

#[test]
fn io_priority_applies_to_the_init_and_exec() {
    // The real-time class needs CAP_SYS_ADMIN: set while berth still holds it, even for a capability-less user.
    let berth = Berth::new();
    let (id, _b) = sleeping(&berth, "ioprio", |c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 3});
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let (code, out, err) = exec_in(&berth, &[&id, "sh", "-c", "ionice -p 1; ionice"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "realtime: prio 3\nrealtime: prio 3\n");
    let id2 = unique("ioprio-bad");
    let mut b = Bundle::new(&id2);
    b.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8}));
    let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id2]);
    assert!(err.contains("process.ioPriority.priority 8"), "{err}");
}

#[test]
fn personality_linux32_shows_in_uname_for_init_and_exec_and_flags_are_refused() {
    if std::env::consts::ARCH != "x86_64" {
        skipped(
            "personality_linux32_shows_in_uname_for_init_and_exec_and_flags_are_refused",
            "LINUX32 is checked as i686 on x86_64 only",
        );
        return;
    }
    let berth = Berth::new();
    let (id, _b) = sleeping(&berth, "pers", |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    let (code, out, err) = exec_in(&berth, &[&id, "uname", "-m"]);
    assert_eq!((code, out.trim()), (0, "i686"), "{err}");
    let init = berth.state(&id)["pid"].as_i64().unwrap();
    let persona = std::fs::read_to_string(format!("/proc/{init}/personality")).unwrap();
    assert_eq!(persona.trim(), "00000008", "PER_LINUX32 on the init");

    let id2 = unique("pers-flags");
    let mut b = Bundle::new(&id2);
    b.edit(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]})
    });
    let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id2]);
    assert!(err.contains("linux.personality.flags"), "{err}");
}

fn cpus_allowed(status: &str) -> String {
    field(status, "Cpus_allowed_list:").to_string()
}

fn host_cpus() -> String {
    cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap())
}

#[test]
fn exec_cpu_affinity_initial_and_final_for_exec_not_for_the_init() {
    if host_cpus() != "0-1" && !host_cpus().starts_with("0-") {
        skipped(
            "exec_cpu_affinity_initial_and_final_for_exec_not_for_the_init",
            &format!("needs CPUs 0 and 1 (this host: {})", host_cpus()),
        );
        return;
    }
    let berth = Berth::new();
    let (id, b) = sleeping(&berth, "affinity", |c| {
        c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    });
    let (code, out, err) = exec_in(&berth, &[&id, "cat", "/proc/self/status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cpus_allowed(&out), "1", "final");
    let init = berth.state(&id)["pid"].as_i64().unwrap();
    let init_status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(
        cpus_allowed(&init_status),
        host_cpus(),
        "the init keeps every CPU"
    );

    // Only `initial`: the process starts on it (berth's debug log shows it, as runc's does: joining a cpuset
    // cgroup resets the affinity, and the spec then leaves it to the kernel).
    let file = b.dir.join("proc.json");
    let log = b.dir.join("debug.log");
    let mut p = b.config["process"].clone();
    p["args"] = json!(["cat", "/proc/self/status"]);
    p["execCPUAffinity"] = json!({"initial": "1"});
    std::fs::write(&file, p.to_string()).unwrap();
    let (code, _, err) = captured(
        berth
            .cmd()
            .arg("--log")
            .arg(&log)
            .args(["--debug", "exec", "--process", file.to_str().unwrap(), &id])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("CPU affinity before joining the cgroup: 1\""),
        "initial only: {logged}"
    );
    // An initial set the machine cannot run on is an error naming the field.
    p["execCPUAffinity"] = json!({"initial": "1000"});
    std::fs::write(&file, p.to_string()).unwrap();
    let (code, _, err) = exec_in(&berth, &["--process", file.to_str().unwrap(), &id]);
    // exec exits 255 when the process could not be run, as runc's.
    assert_eq!(code, 255, "{err}");
    assert!(err.contains("process.execCPUAffinity.initial"), "{err}");

    // Neither: every CPU again, even from a berth pinned to CPU 0 (runc resets too).
    p["execCPUAffinity"] = json!(null);
    std::fs::write(&file, p.to_string()).unwrap();
    let out = std::process::Command::new("taskset")
        .args(["-c", "0", BERTH, "--root"])
        .arg(&berth.root)
        .args(["exec", "--process", file.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = captured(out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        cpus_allowed(&out),
        host_cpus(),
        "no affinity inherited from berth"
    );
}

#[test]
fn the_init_does_not_inherit_the_affinity_of_berth() {
    let id = unique("affinity-init");
    let mut b = Bundle::new(&id);
    b.args(&["cat", "/proc/self/status"]);
    let berth = Berth::new();
    let out = std::process::Command::new("taskset")
        .args(["-c", "0", BERTH, "--root"])
        .arg(&berth.root)
        .args(["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = captured(out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cpus_allowed(&out), host_cpus());
}

#[test]
fn intel_rdt_without_resctrl_is_refused_as_runc_does() {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    let id = unique("rdt");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "berth-test"}));
    let berth = Berth::new();
    let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    let want = if mounted {
        "linux.intelRdt: not supported"
    } else {
        "intelRdt is specified in config, but Intel RDT is not enabled"
    };
    assert!(err.contains(want) && err.contains(&id), "{err}");
    assert!(!berth.root.join(&id).exists(), "state dir left behind");
}

/// A change to a config.
type Edit = fn(&mut serde_json::Value);

#[test]
fn fields_berth_does_not_apply_are_refused_by_name() {
    let berth = Berth::new();
    let cases: [(&str, Edit); 3] = [
        ("linux.netDevices", |c| {
            c["linux"]["netDevices"] = json!({"eth9": {"name": "eth9"}})
        }),
        ("process.commandLine", |c| {
            c["process"]["commandLine"] = json!("sh")
        }),
        ("windows", |c| c["windows"] = json!({"layerFolders": []})),
    ];
    for (want, edit) in cases {
        let id = unique("unapplied");
        let mut b = Bundle::new(&id);
        b.edit(edit);
        let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(err.contains(want), "{err}");
        assert!(!berth.root.join(&id).exists(), "state dir left behind");
    }
}

#[test]
fn duplicate_env_entries_keep_the_last_and_an_empty_home_is_replaced() {
    // `env` prints the environment the program got: one entry per name, HOME from /etc/passwd (as runc).
    let (code, out, err) = inside("envdup", "env", |c| {
        c["process"]["env"] = json!(["PATH=/bin", "A=1", "HOME=", "A=2"]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<&str> = out
        .lines()
        .filter(|l| !["PWD=", "SHLVL=", "_="].iter().any(|p| l.starts_with(p)))
        .collect();
    lines.sort();
    assert_eq!(lines, ["A=2", "HOME=/home/user", "PATH=/bin"], "{out}");
}

#[test]
fn memory_policy_binds_the_init_and_exec_to_node_0() {
    if !std::path::Path::new("/sys/devices/system/node/node0").exists() {
        skipped(
            "memory_policy_binds_the_init_and_exec_to_node_0",
            "no NUMA node 0 in sysfs",
        );
        return;
    }
    // numa_maps shows the task's policy for mappings without their own.
    let berth = Berth::new();
    let (id, _b) = sleeping(&berth, "mempol", |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let (code, out, err) = exec_in(
        &berth,
        &[
            &id,
            "sh",
            "-c",
            "head -1 /proc/1/numa_maps; head -1 /proc/self/numa_maps",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in lines {
        assert_eq!(l.split(' ').nth(1), Some("bind:0"), "{out}");
    }
    let id2 = unique("mempol-bad");
    let mut b = Bundle::new(&id2);
    b.edit(|c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_LOCAL", "nodes": "0"}));
    let err = berth.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id2]);
    assert!(err.contains("linux.memoryPolicy"), "{err}");
}
