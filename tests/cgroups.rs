//! cgroups with real containers, on whichever layout the host has: cgroup v1 (and hybrid) here, pure cgroup v2 in
//! the VM of integration/cgv2/test.sh. Every limit is read back from the cgroup files; pids.max, the memory limit,
//! the device rules and the freezer are shown to act on real processes; bad input fails clearly and leaves nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The contents of `file` in the container's cgroup (whichever hierarchy has it), trimmed.
fn cg_read(berth: &Berth, id: &str, file: &str) -> String {
    let dir = cg_dir_with(berth, id, file).unwrap_or_else(|| panic!("{id}: no cgroup has {file}"));
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn cg_dir_with(berth: &Berth, id: &str, file: &str) -> Option<PathBuf> {
    berth
        .cgroup_dirs(id)
        .into_iter()
        .find(|d| d.join(file).exists())
}

/// Every directory where the container's relative cgroup could have been made (under our own cgroup, or its parent
/// on v2).
fn possible_cgroup_dirs(b: &Bundle) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in own_cgroup_dirs() {
        out.push(d.join(&b.cgroup));
        if let Some(p) = d.parent() {
            out.push(p.join(&b.cgroup));
        }
    }
    out
}

fn assert_nothing_left(berth: &Berth, id: &str, b: &Bundle) {
    assert_gone(berth, id, &possible_cgroup_dirs(b), None);
}

fn start(berth: &Berth, b: &Bundle, id: &str) {
    let out = berth.create(b, id, &[]);
    assert!(
        out.status.success(),
        "create {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    berth.ok(&["start", id]);
}

/// Waits (bounded) until the container's stdout contains `what`.
fn wait_output(berth: &Berth, b: &Bundle, id: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = berth.stdout_of(b, id);
        if out.contains(what) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: no {what:?} in stdout {out:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The VM of integration/cgv2/test.sh, whose runner gives it two disks for the io controller: vda with iocost
/// enabled, vdb without.
fn in_cgv2_vm() -> bool {
    std::env::var_os("BERTH_CGV2_VM").is_some()
}

/// The whole disks of this machine (not partitions): (major, minor), in /proc/partitions order.
fn whole_disks() -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/partitions").unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.get(3)?;
            // A whole disk has a directory in /sys/block; a partition has not.
            Path::new("/sys/block").join(name).exists().then_some(())?;
            Some((f[0].parse().ok()?, f[1].parse().ok()?))
        })
        .collect()
}

/// A disk to set io limits on. In the cgroup v2 VM there must be one, with iocost, so that the io checks cannot
/// silently stop running there.
fn some_block_device() -> Option<(u64, u64)> {
    let disk = whole_disks().first().copied();
    if in_cgv2_vm() {
        let disk = disk.expect(
            "no disk in /proc/partitions: the cgroup v2 VM lost the disks its runner attaches",
        );
        assert!(
            per_device_weight_works(disk),
            "the cgroup v2 VM's first disk has no iocost"
        );
    }
    disk
}

/// The I/O scheduler of a disk, e.g. "mq-deadline" ("none" for none).
fn scheduler(disk: (u64, u64)) -> String {
    let path = format!("/sys/dev/block/{}:{}/queue/scheduler", disk.0, disk.1);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace()
        .find_map(|s| s.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or("none")
        .to_string()
}

/// Whether the kernel takes a per-device weight for the disk: BFQ (or, on old kernels, CFQ) schedules it, or on v2
/// iocost is enabled for it in the root's io.cost.qos.
fn per_device_weight_works(disk: (u64, u64)) -> bool {
    let iocost = v2()
        && std::fs::read_to_string("/sys/fs/cgroup/io.cost.qos")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("{}:{} enable=1", disk.0, disk.1)));
    iocost || matches!(scheduler(disk).as_str(), "bfq" | "cfq")
}

#[test]
fn every_resource_is_written_to_the_cgroup_files() {
    let id = unique("cg-all");
    let mut b = Bundle::new(&id);
    b.sh("exec sleep 1000");
    let mib = 1 << 20;
    let disk = some_block_device();
    b.edit(|c| {
        let mut r = json!({
            "memory": {"limit": 64 * mib, "reservation": 32 * mib, "swap": 128 * mib},
            "cpu": {"shares": 512, "quota": 50000, "period": 200000, "burst": 1000, "cpus": "0", "mems": "0", "idle": 0},
            "pids": {"limit": 42},
        });
        if !v2() {
            r["memory"]["swappiness"] = json!(17);
            r["memory"]["kernelTCP"] = json!(16 * mib);
            r["memory"]["disableOOMKiller"] = json!(true);
            r["memory"]["useHierarchy"] = json!(true);
        } else {
            r["unified"] = json!({"memory.high": (48 * mib).to_string(), "pids.max": "41"});
        }
        if let Some((major, minor)) = disk {
            r["blockIO"] = json!({
                "weight": 300,
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 2097152}],
                "throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 200}],
            });
            if per_device_weight_works((major, minor)) {
                r["blockIO"]["weightDevice"] =
                    json!([{"major": major, "minor": minor, "weight": 500}]);
            }
            if v2() {
                // No v2 file has a leaf weight: ignored, as runc does (v1 without CFQ refuses it).
                r["blockIO"]["leafWeight"] = json!(200);
            }
        }
        c["linux"]["resources"] = r;
    });
    let berth = Berth::new();
    start(&berth, &b, &id);
    let rd = |f: &str| cg_read(&berth, &id, f);
    if v2() {
        assert_eq!(rd("memory.max"), (64 * mib).to_string());
        assert_eq!(rd("memory.low"), (32 * mib).to_string());
        assert_eq!(
            rd("memory.swap.max"),
            (64 * mib).to_string(),
            "swap is memory+swap minus memory"
        );
        assert_eq!(
            rd("cpu.weight"),
            "59",
            "shares 512, runc's log-quadratic map"
        );
        assert_eq!(rd("cpu.max"), "50000 200000");
        assert_eq!(rd("cpu.max.burst"), "1000");
        assert_eq!(rd("cpu.idle"), "0");
        assert_eq!(rd("cpuset.cpus"), "0");
        assert_eq!(rd("cpuset.mems"), "0");
        // unified is applied last and wins over pids.limit, as in runc.
        assert_eq!(rd("pids.max"), "41");
        assert_eq!(rd("memory.high"), (48 * mib).to_string());
        if let Some((major, minor)) = disk {
            let dev = format!("{major}:{minor}");
            assert_eq!(
                rd("io.max"),
                format!("{dev} rbps=1048576 wbps=2097152 riops=100 wiops=200")
            );
            // BFQ, where it is loaded, takes the spec's weight unchanged; else iocost's io.weight takes it on its
            // 1..10000 scale: 1 + (300 - 10) * 9999 / 990 = 2930, and 500 → 4950.
            let bfq = cg_dir_with(&berth, &id, "io.bfq.weight").is_some();
            let (file, default) = if bfq {
                ("io.bfq.weight", "default 300")
            } else {
                ("io.weight", "default 2930")
            };
            let weights = rd(file);
            assert_eq!(weights.lines().next(), Some(default), "{file}: {weights}");
            if per_device_weight_works((major, minor)) {
                let (file, line) = if bfq && scheduler((major, minor)) == "bfq" {
                    ("io.bfq.weight", format!("{dev} 500"))
                } else {
                    ("io.weight", format!("{dev} 4950"))
                };
                let weights = rd(file);
                assert!(weights.lines().any(|l| l == line), "{file}: {weights}");
            }
        }
    } else {
        assert_eq!(rd("memory.limit_in_bytes"), (64 * mib).to_string());
        assert_eq!(rd("memory.soft_limit_in_bytes"), (32 * mib).to_string());
        assert_eq!(rd("memory.memsw.limit_in_bytes"), (128 * mib).to_string());
        assert_eq!(rd("memory.swappiness"), "17");
        assert_eq!(rd("memory.kmem.tcp.limit_in_bytes"), (16 * mib).to_string());
        assert!(rd("memory.oom_control").contains("oom_kill_disable 1"));
        assert_eq!(rd("memory.use_hierarchy"), "1");
        assert_eq!(rd("cpu.shares"), "512");
        assert_eq!(rd("cpu.cfs_quota_us"), "50000");
        assert_eq!(rd("cpu.cfs_period_us"), "200000");
        assert_eq!(rd("cpu.cfs_burst_us"), "1000");
        assert_eq!(rd("cpu.idle"), "0");
        assert_eq!(rd("cpuset.cpus"), "0");
        assert_eq!(rd("cpuset.mems"), "0");
        assert_eq!(rd("pids.max"), "42");
        if let Some((major, minor)) = disk {
            let dev = format!("{major}:{minor}");
            assert_eq!(
                rd("blkio.throttle.read_bps_device"),
                format!("{dev} 1048576")
            );
            assert_eq!(
                rd("blkio.throttle.write_bps_device"),
                format!("{dev} 2097152")
            );
            assert_eq!(rd("blkio.throttle.read_iops_device"), format!("{dev} 100"));
            assert_eq!(rd("blkio.throttle.write_iops_device"), format!("{dev} 200"));
            let cfq = cg_dir_with(&berth, &id, "blkio.weight").is_some();
            let (weight, weight_device) = if cfq {
                ("blkio.weight", "blkio.weight_device")
            } else {
                ("blkio.bfq.weight", "blkio.bfq.weight_device")
            };
            assert_eq!(rd(weight), "300");
            if per_device_weight_works((major, minor)) {
                let lines = rd(weight_device);
                assert!(
                    lines.lines().any(|l| l == format!("{dev} 500")),
                    "{weight_device}: {lines}"
                );
            }
        }
        // The device list: deny all, then the defaults every container gets.
        let devices = rd("devices.list");
        assert!(
            devices.contains("c 1:3 rwm") && devices.contains("c 136:* rwm"),
            "{devices}"
        );
        assert!(!devices.contains("a *:* rwm"), "{devices}");
    }
    if let Some((major, minor)) = disk {
        // update: a rate of 0 lifts that limit (v2's io.max spells it "max"), the device's others stay.
        let resources = b.dir.join("io-update.json");
        let lift = json!({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 0}]}});
        std::fs::write(&resources, lift.to_string()).unwrap();
        let resources = resources.to_str().unwrap();
        berth.ok(&[
            "update",
            "--blkio-weight",
            "100",
            "--resources",
            resources,
            &id,
        ]);
        let dev = format!("{major}:{minor}");
        if v2() {
            assert_eq!(
                rd("io.max"),
                format!("{dev} rbps=max wbps=2097152 riops=100 wiops=200")
            );
            let weights = if cg_dir_with(&berth, &id, "io.bfq.weight").is_some() {
                ("io.bfq.weight", "default 100")
            } else {
                ("io.weight", "default 910")
            };
            assert_eq!(rd(weights.0).lines().next(), Some(weights.1));
        } else {
            assert_eq!(rd("blkio.throttle.read_bps_device"), "");
            assert_eq!(
                rd("blkio.throttle.write_bps_device"),
                format!("{dev} 2097152")
            );
            let weight = cg_dir_with(&berth, &id, "blkio.weight")
                .map(|_| rd("blkio.weight"))
                .unwrap_or_else(|| rd("blkio.bfq.weight"));
            assert_eq!(weight, "100");
        }
    }
    // The stats see the same limits.
    let stats: Value = serde_json::from_str(&berth.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["id"], json!(id));
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], json!(64 * mib));
    assert_eq!(stats["data"]["pids"]["current"], 1);
    assert!(stats["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", "--force", &id]);
    assert_gone(&berth, &id, &cgroups, None);
}

#[test]
fn hugepage_limits_where_the_host_has_hugetlb() {
    // v1: a hugetlb hierarchy is mounted; v2: our cgroup hands hugetlb down to its children.
    let probe = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .contains("hugetlb")
        || (v2()
            && std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
                .unwrap_or_default()
                .contains("hugetlb"));
    let id = unique("cg-huge");
    let mut b = Bundle::new(&id);
    b.sh("exec sleep 1000").edit(|c| {
        c["linux"]["resources"] =
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 << 20}]});
    });
    let berth = Berth::new();
    let out = berth.create(&b, &id, &[]);
    if !probe {
        // This host has no hugetlb controller: a clear error, and nothing left.
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("hugepageLimits") && err.contains("hugetlb"),
            "{err}"
        );
        assert_nothing_left(&berth, &id, &b);
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = if v2() {
        "hugetlb.2MB.max"
    } else {
        "hugetlb.2MB.limit_in_bytes"
    };
    assert_eq!(cg_read(&berth, &id, file), (8 << 20).to_string());
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn a_process_over_pids_limit_cannot_fork() {
    let id = unique("cg-pids");
    let mut b = Bundle::new(&id);
    // The shell, a subshell and two sleeps fit in 4; the subshell's third fork fails (and ends it).
    b.sh("(for i in 1 2 3 4 5 6; do sleep 100 & done); echo done; exec sleep 1000")
        .edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 4}}));
    let berth = Berth::new();
    start(&berth, &b, &id);
    wait_output(&berth, &b, &id, "done");
    let err = std::fs::read_to_string(b.dir.join(format!("{id}.err"))).unwrap();
    assert!(
        err.contains("fork"),
        "the shell should report failed forks: {err:?}"
    );
    assert_eq!(cg_read(&berth, &id, "pids.current"), "3");
    let events = cg_read(&berth, &id, "pids.events");
    let max: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(max >= 1, "pids.events: {events}");
    let pids: Vec<i64> = serde_json::from_str(&berth.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&berth.state(&id)["pid"].as_i64().unwrap()));
    let table = berth.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains("sleep")).count(),
        3,
        "{table}"
    );
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn a_memory_hog_is_oom_killed_and_events_reports_it() {
    let id = unique("cg-oom");
    let mut b = Bundle::new(&id);
    let limit = 16 << 20;
    // The hog starts once `events` is watching (it creates /tmp/go); the shell outlives it and says how it died.
    b.sh("while [ ! -e /tmp/go ]; do sleep 0.05; done; tail /dev/zero; echo hog-exited-$?; exec sleep 1000")
        .edit(|c| {
            c["linux"]["resources"] = json!({"memory": {"limit": limit, "swap": limit}});
        });
    let berth = Berth::new();
    start(&berth, &b, &id);
    let mut events = berth
        .cmd()
        .args(["events", "--interval", "1s", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first stats line shows events is running (and its OOM watch registered).
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a stats line");
    assert!(first.contains("\"type\":\"stats\""), "{first}");
    std::fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    let out = wait_output(&berth, &b, &id, "hog-exited");
    assert!(
        out.contains("hog-exited-137"),
        "the hog must die of SIGKILL: {out}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_oom = false;
    while Instant::now() < deadline && !saw_oom {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["id"], json!(id));
            saw_oom = v["type"] == "oom";
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    assert!(saw_oom, "events did not report the OOM");
    if v2() {
        let ev = cg_read(&berth, &id, "memory.events");
        assert!(!ev.contains("oom_kill 0"), "{ev}");
    } else {
        let ctl = cg_read(&berth, &id, "memory.oom_control");
        assert!(!ctl.contains("oom_kill 0"), "{ctl}");
    }
    berth.ok(&["delete", "--force", &id]);
}

/// A container that writes to the host's /dev/kmsg (bound in: a device node berth's defaults do not allow) with
/// `extra` device rules; returns what the write printed.
fn write_kmsg(extra: Value) -> String {
    let id = unique("cg-dev");
    let mut b = Bundle::new(&id);
    b.sh("echo berth-device-test > /dev/kmsg && echo write-ok; true")
        .edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]
            }));
            c["linux"]["resources"] = json!({"devices": extra});
        });
    let berth = Berth::new();
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    format!("{out}{err}")
}

#[test]
fn a_denied_device_cannot_be_opened() {
    let denied = write_kmsg(json!([{"allow": false, "access": "rwm"}]));
    assert!(!denied.contains("write-ok"), "{denied}");
    assert!(denied.contains("Operation not permitted"), "{denied}");
    // The same with a rule allowing it: the refusal above was the device rules'.
    let allowed = write_kmsg(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}
    ]));
    assert!(allowed.contains("write-ok"), "{allowed}");
}

fn counter(b: &Bundle) -> u64 {
    std::fs::read_to_string(b.rootfs().join("tmp/count"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn pause_freezes_and_resume_continues() {
    let id = unique("cg-pause");
    let mut b = Bundle::new(&id);
    b.sh("i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.02; done")
        .edit(|c| c["root"]["readonly"] = json!(false));
    let berth = Berth::new();
    start(&berth, &b, &id);
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&b) < 3 {
        assert!(Instant::now() < deadline, "the counter does not run");
        std::thread::sleep(Duration::from_millis(20));
    }
    berth.ok(&["pause", &id]);
    assert_eq!(berth.status(&id), "paused");
    let err = berth.fails(&["pause", &id]);
    assert!(err.contains("paused"), "{err}");
    let frozen = counter(&b);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(counter(&b), frozen, "the counter moved while paused");
    berth.ok(&["resume", &id]);
    assert_eq!(berth.status(&id), "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&b) <= frozen + 2 {
        assert!(
            Instant::now() < deadline,
            "the counter did not continue after resume"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = berth.fails(&["resume", &id]);
    assert!(err.contains("not paused"), "{err}");
    // A paused container can still be deleted with --force.
    berth.ok(&["pause", &id]);
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", "--force", &id]);
    assert_gone(&berth, &id, &cgroups, None);
}

/// cgroup v1 real-time bandwidth: a period shorter than the current runtime is refused by the kernel until the
/// runtime is lowered, so berth writes the pair in whichever order the kernel takes (runc's update.bats "rt period
/// and runtime", runc issue 4094).
#[test]
fn realtime_period_and_runtime_update_in_either_order() {
    let Some(cpu_root) = own_cgroup_dirs()
        .into_iter()
        .find(|d| d.join("cpu.rt_period_us").exists())
    else {
        skipped(
            "realtime_period_and_runtime_update_in_either_order",
            "no cgroup v1 cpu.rt_period_us (cgroup v2, or no RT group scheduling)",
        );
        return;
    };
    let read = |d: &Path, f: &str| {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    let (period, runtime) = (
        read(&cpu_root, "cpu.rt_period_us"),
        read(&cpu_root, "cpu.rt_runtime_us"),
    );
    let id = unique("cg-rt");
    // A parent of its own, given the root's real-time budget (a child can have no more than its parent).
    let parent = cpu_root.join(format!("berth-rt-{id}"));
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::write(parent.join("cpu.rt_period_us"), &period).unwrap();
    std::fs::write(parent.join("cpu.rt_runtime_us"), &runtime).unwrap();
    let outcome = std::panic::catch_unwind(|| {
        let mut b = Bundle::new(&id);
        b.sh("exec sleep 1000").edit(|c| {
            c["linux"]["cgroupsPath"] = json!(format!("berth-rt-{id}/c"));
        });
        let berth = Berth::new();
        start(&berth, &b, &id);
        let dir = parent.join("c");
        for (p, r) in [("900001", "600001"), ("10000", "3000"), ("100000", "20000")] {
            berth.ok(&["update", "--cpu-rt-period", p, "--cpu-rt-runtime", r, &id]);
            assert_eq!(
                (
                    read(&dir, "cpu.rt_period_us"),
                    read(&dir, "cpu.rt_runtime_us")
                ),
                (p.to_string(), r.to_string())
            );
        }
        berth.ok(&["delete", "--force", &id]);
    });
    // The path's parent exists in every hierarchy berth made the container's cgroup in: remove it everywhere.
    for own in own_cgroup_dirs() {
        let _ = std::fs::remove_dir(own.join(format!("berth-rt-{id}/c")));
        let _ = std::fs::remove_dir(own.join(format!("berth-rt-{id}")));
    }
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn update_changes_the_files() {
    let id = unique("cg-update");
    let mut b = Bundle::new(&id);
    b.sh("exec sleep 1000").edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    });
    let berth = Berth::new();
    start(&berth, &b, &id);
    berth.ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        "--pids-limit",
        "30",
        "--cpuset-cpus",
        "0",
        &id,
    ]);
    let rd = |f: &str| cg_read(&berth, &id, f);
    if v2() {
        assert_eq!(rd("memory.max"), (96 << 20).to_string());
        assert_eq!(rd("memory.swap.max"), (96 << 20).to_string());
        assert_eq!(rd("cpu.weight"), "35");
        assert_eq!(rd("cpu.max"), "20000 100000");
    } else {
        assert_eq!(rd("memory.limit_in_bytes"), (96 << 20).to_string());
        assert_eq!(rd("memory.memsw.limit_in_bytes"), (192 << 20).to_string());
        assert_eq!(rd("cpu.shares"), "256");
        assert_eq!(rd("cpu.cfs_quota_us"), "20000");
    }
    assert_eq!(rd("pids.max"), "30");
    assert_eq!(rd("cpuset.cpus"), "0");
    // The spec's JSON, from stdin.
    let mut child = berth
        .cmd()
        .args(["update", "--resources", "-", &id])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 12}, "memory": {"limit": 50331648}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rd("pids.max"), "12");
    let mem = if v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(rd(mem), "50331648");
    // A value the kernel refuses names the file and the value, and changes nothing else.
    let err = berth.fails(&["update", "--cpuset-cpus", "4000", &id]);
    assert!(err.contains("cpuset.cpus") && err.contains("4000"), "{err}");
    assert_eq!(rd("cpuset.cpus"), "0");
    let err = berth.fails(&["update", "--memory", "lots", &id]);
    assert!(err.contains("--memory") && err.contains("lots"), "{err}");
    // A value no kernel takes is refused by the checks `create` makes at load, naming the field, before the
    // pids limit of the same call is written.
    for (args, want) in [
        (
            &["--memory", "32m", "--memory-swap", "16m"][..],
            "linux.resources.memory.swap: memory+swap (16777216) must not be below the memory limit (33554432)",
        ),
        (
            &["--cpu-period", "10"],
            "linux.resources.cpu.period: 10 is not in 1000..1000000",
        ),
    ] {
        let mut all = vec!["update", "--pids-limit", "7"];
        all.extend(args);
        all.push(&id);
        let err = berth.fails(&all);
        assert!(err.contains(&id) && err.contains(want), "{want:?} not in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert_eq!(rd("pids.max"), "12");
        assert_eq!(rd(mem), "50331648");
    }
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn update_of_a_stopped_container_is_refused() {
    let id = unique("cg-upd-stopped");
    let mut b = Bundle::new(&id);
    b.sh("true");
    let berth = Berth::new();
    start(&berth, &b, &id);
    berth.wait_status(&id, "stopped");
    let err = berth.fails(&["update", "--pids-limit", "5", &id]);
    assert!(err.contains(&id) && err.contains("stopped"), "{err}");
    let err = berth.fails(&["pause", &id]);
    assert!(err.contains("stopped"), "{err}");
    berth.ok(&["delete", &id]);
}

/// `create` with `resources` fails with an error containing every one of `want`, and leaves nothing.
fn create_fails(name: &str, edit: impl FnOnce(&mut Value), want: &[&str]) {
    let id = unique(name);
    let mut b = Bundle::new(&id);
    b.sh("exec sleep 1000").edit(edit);
    let berth = Berth::new();
    let out = berth.create(&b, &id, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{id} should fail: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
    for w in want {
        assert!(err.contains(w), "{id}: {w:?} not in {err:?}");
    }
    assert_nothing_left(&berth, &id, &b);
}

#[test]
fn a_device_weight_nothing_can_take_is_refused() {
    // A disk whose scheduler is neither BFQ nor CFQ and (v2) has no iocost: the VM's vdb, this host's disk.
    let Some((major, minor)) = whole_disks()
        .into_iter()
        .find(|d| !per_device_weight_works(*d))
    else {
        assert!(!in_cgv2_vm(), "the cgroup v2 VM has no disk without iocost");
        skipped(
            "a_device_weight_nothing_can_take_is_refused",
            "every disk here takes per-device weights",
        );
        return;
    };
    create_fails(
        "cg-bad-wdev",
        |c| {
            c["linux"]["resources"] = json!({"blockIO": {
                "weightDevice": [{"major": major, "minor": minor, "weight": 500}]
            }})
        },
        &[
            "blockIO.weightDevice",
            &format!("device {major}:{minor}"),
            "Operation not supported",
        ],
    );
}

#[test]
fn a_limit_the_kernel_refuses_names_file_and_value() {
    create_fails(
        "cg-bad-cpus",
        |c| c["linux"]["resources"] = json!({"pids": {"limit": 10}, "cpu": {"cpus": "4000"}}),
        &["cpuset.cpus", "\"4000\""],
    );
}

/// On v2 an unknown unified key is refused, naming it. On v1, hybrid included (where a cgroup2 hierarchy exists
/// but the controllers are v1's), any unified key is refused with runc's words, even a valid one (runc's
/// cgroups.bats "cgroup v1 + unified resources should fail"). A key that is no file name fails at load, on both.
#[test]
fn unknown_unified_key_is_refused() {
    create_fails(
        "cg-bad-unified-path",
        |c| c["linux"]["resources"] = json!({"unified": {"../memory.max": "1"}}),
        &["linux.resources.unified: key \"../memory.max\": must be a file name"],
    );
    if !v2() {
        let v1 = &[
            "unified",
            "invalid configuration: cannot use unified on cgroup v1",
        ];
        for key in ["memory.min", "memory.nosuch"] {
            create_fails(
                "cg-v1-unified",
                |c| c["linux"]["resources"] = json!({"unified": {key: "131072"}}),
                v1,
            );
        }
        return;
    }
    create_fails(
        "cg-bad-unified",
        |c| c["linux"]["resources"] = json!({"unified": {"memory.nosuch": "1"}}),
        &["unified", "memory.nosuch"],
    );
}

/// Without linux.cgroupsPath the container goes to `berth/<id>` (relative, like any relative path); `delete` removes
/// both the container's cgroup and the `berth` parent once it is empty, in every hierarchy.
#[test]
fn an_empty_cgroups_path_uses_berth_and_id_and_leaves_nothing() {
    let berth = Berth::new();
    let id = unique("cg-default");
    let mut b = Bundle::new(&id);
    b.sh("exec sleep 1000").edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    start(&berth, &b, &id);
    let dirs = berth.cgroup_dirs(&id);
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(d.ends_with(format!("berth/{id}")), "{}", d.display());
        assert!(d.is_dir(), "{}", d.display());
    }
    berth.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{} left", d.display());
        let parent = d.parent().unwrap();
        assert!(!parent.exists(), "{} left", parent.display());
    }
}

#[test]
fn cgroups_path_with_dotdot_is_refused() {
    create_fails(
        "cg-bad-path",
        |c| c["linux"]["cgroupsPath"] = json!("berth-tests/../../escape"),
        &["cgroupsPath", ".."],
    );
}

#[test]
fn bad_device_rules_are_refused() {
    create_fails(
        "cg-bad-devtype",
        |c| {
            c["linux"]["resources"] =
                json!({"devices": [{"allow": true, "type": "p", "access": "rwm"}]})
        },
        &["devices", "type p"],
    );
    create_fails(
        "cg-bad-devtype-x",
        |c| {
            c["linux"]["resources"] =
                json!({"devices": [{"allow": true, "type": "x", "access": "rwm"}]})
        },
        &["config.json", "unknown variant `x`"],
    );
    create_fails(
        "cg-bad-access",
        |c| c["linux"]["resources"] = json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]}),
        &["devices", "access 'x'"],
    );
    create_fails(
        "cg-bad-access-a",
        |c| c["linux"]["resources"] = json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "a"}]}),
        &["devices", "access \"a\" names none of r, w, m"],
    );
}

/// A resource value no kernel would take fails `create` at load, before the state dir or any cgroup is made: one
/// line naming the field; strace shows berth made no directory at all (an apply-time check would have made the
/// state dir and the cgroup first, then undone them).
#[test]
fn bad_resource_values_fail_at_load_and_make_nothing() {
    let strace = ["/usr/bin/strace", "/bin/strace"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    for (name, resources, want) in [
        (
            "cg-load-swap",
            json!({"memory": {"limit": 8388608, "swap": 4194304}}),
            "linux.resources.memory.swap: memory+swap (4194304) must not be below the memory limit (8388608)",
        ),
        (
            "cg-load-swappiness",
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness: 101 is not in 0..100",
        ),
        (
            "cg-load-period",
            json!({"cpu": {"quota": 5000, "period": 10}}),
            "linux.resources.cpu.period: 10 is not in 1000..1000000",
        ),
        (
            "cg-load-hugepage",
            json!({"hugepageLimits": [{"pageSize": "2TB", "limit": 1}]}),
            "linux.resources.hugepageLimits: page size \"2TB\"",
        ),
        (
            "cg-load-weight",
            json!({"blockIO": {"weight": 5}}),
            "linux.resources.blockIO.weight: weight 5 is not in 10..1000",
        ),
        (
            "cg-load-devices",
            json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "access": "rwx"}]}),
            "linux.resources.devices[1]: rule ",
        ),
    ] {
        let id = unique(name);
        let mut b = Bundle::new(&id);
        b.sh("true").edit(|c| c["linux"]["resources"] = resources);
        let berth = Berth::new();
        let trace = b.dir.join("mkdir.trace");
        let mut cmd = match strace {
            Some(strace) => {
                let mut c = std::process::Command::new(strace);
                c.args(["-f", "-qq", "-e", "trace=mkdir,mkdirat", "-o"])
                    .arg(&trace)
                    .arg(BERTH)
                    .arg("--root")
                    .arg(&berth.root);
                c
            }
            None => berth.cmd(),
        };
        cmd.args(["create", "--bundle", b.dir.to_str().unwrap(), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = bounded(cmd, &format!("berth create {id}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{id} should fail: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
        assert!(err.contains(&id) && err.contains(want), "{want:?} not in {err:?}");
        assert!(!berth.root.join(&id).exists(), "{id}: state dir left");
        assert_nothing_left(&berth, &id, &b);
        if strace.is_some() {
            let made = std::fs::read_to_string(&trace).unwrap();
            assert!(!made.contains("mkdir"), "{id}: berth made directories before refusing:\n{made}");
        }
    }
    if strace.is_none() {
        skipped(
            "bad_resource_values_fail_at_load_and_make_nothing",
            "no strace: that nothing was made before the refusal is checked by what is left only",
        );
    }
}

/// The `cgroup` mount of the default config: on v2 a cgroup2 mount rooted at the container's own cgroup (through its
/// cgroup namespace); on v1 a read-only tmpfs with the container's directory of each hierarchy bound below it.
#[test]
fn the_cgroup_mount_shows_the_containers_own_cgroup() {
    let berth = Berth::new();
    let id = unique("cgmount");
    let mut b = Bundle::new(&id);
    b.sh(
        "echo self=$(cat /proc/self/cgroup | tr '\\n' ' '); \
         awk '$5 ~ \"^/sys/fs/cgroup\" {print \"mnt=\" $5 \" \" $9}' /proc/self/mountinfo; \
         if [ -f /sys/fs/cgroup/cgroup.procs ]; then echo procs=$(cat /sys/fs/cgroup/cgroup.procs | tr '\\n' ' '); \
         else echo procs=$(cat /sys/fs/cgroup/pids/cgroup.procs | tr '\\n' ' '); fi; \
         touch /sys/fs/cgroup/x 2>/dev/null && echo writable=yes || echo writable=no",
    );
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    let line = |k: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} missing: {out}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        line("writable="),
        "no",
        "the cgroup mount is read-only by default"
    );
    // The shell itself is pid 1 of its pid namespace and sits in the container's cgroup.
    assert!(line("procs=").split(' ').any(|p| p == "1"), "{out}");
    if v2() {
        assert_eq!(
            line("self="),
            "0::/",
            "the cgroup namespace is rooted at the container's cgroup"
        );
        assert!(
            out.lines().any(|l| l == "mnt=/sys/fs/cgroup cgroup2"),
            "{out}"
        );
    } else {
        assert!(
            out.lines().any(|l| l == "mnt=/sys/fs/cgroup tmpfs"),
            "{out}"
        );
        assert!(
            out.lines().any(|l| l == "mnt=/sys/fs/cgroup/pids cgroup"),
            "{out}"
        );
        // Every hierarchy path is "/" inside the cgroup namespace.
        assert!(
            line("self=")
                .split(' ')
                .all(|e| e.is_empty() || e.ends_with(":/")),
            "{out}"
        );
    }
}

/// Whether these tests' containers can get the rdma controller: a v1 hierarchy has it, or on pure v2 the cgroup
/// their relative paths go under (the parent of ours) offers it.
fn rdma_controller() -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = mountinfo.lines().any(|l| {
        let post: Vec<&str> = l.split_once(" - ").map_or("", |p| p.1).split(' ').collect();
        post[0] == "cgroup"
            && post
                .get(2)
                .is_some_and(|o| o.split(',').any(|o| o == "rdma"))
    });
    v1 || v2()
        && own_cgroup_dirs().iter().any(|d| {
            let base = if d == Path::new("/sys/fs/cgroup") {
                d.as_path()
            } else {
                d.parent().unwrap_or(d)
            };
            std::fs::read_to_string(base.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == "rdma")
        })
}

/// An RDMA device to set limits on. In the cgroup v2 VM (whose runner loads the Soft-RoCE driver rdma_rxe) it is
/// `rxe0`, made here on a veth, and it must work; elsewhere the first device the host has, if any.
fn rdma_device() -> Option<String> {
    static DEV: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DEV.get_or_init(|| {
        if in_cgv2_vm() {
            make_rxe("rxe0", "berth-rxe");
            return Some("rxe0".to_string());
        }
        let mut devs: Vec<String> = std::fs::read_dir("/sys/class/infiniband")
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        devs.sort();
        devs.into_iter().next()
    })
    .clone()
}

/// Makes the Soft-RoCE device `dev` on a new veth `netdev` (what `rdma link add DEV type rxe netdev NETDEV` does: an
/// RDMA_NLDEV_CMD_NEWLINK request over NETLINK_RDMA; the VM has no `rdma` tool).
fn make_rxe(dev: &str, netdev: &str) {
    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };
    use std::os::fd::AsRawFd;
    if Path::new("/sys/class/infiniband").join(dev).exists() {
        return;
    }
    // busybox ip names the veth's peer itself (veth0, ...).
    for args in [
        &["link", "add", netdev, "type", "veth"][..],
        &["link", "set", netdev, "up"],
    ] {
        let st = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip {args:?}");
    }
    // rdma_netlink.h: client RDMA_NL_NLDEV (5), op RDMA_NLDEV_CMD_NEWLINK (3); attributes DEV_NAME (2),
    // NDEV_NAME (51) and LINK_TYPE (65), NUL-terminated strings.
    const NLDEV_NEWLINK: u16 = (5 << 10) + 3;
    let mut attrs = Vec::new();
    for (kind, value) in [(2u16, dev), (51, netdev), (65, "rxe")] {
        let len = 4 + value.len() + 1;
        attrs.extend_from_slice(&(len as u16).to_ne_bytes());
        attrs.extend_from_slice(&kind.to_ne_bytes());
        attrs.extend_from_slice(value.as_bytes());
        attrs.push(0);
        attrs.resize(attrs.len().next_multiple_of(4), 0);
    }
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + attrs.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&NLDEV_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    msg.extend_from_slice(&attrs);
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRDMA,
    )
    .expect("socket(AF_NETLINK, NETLINK_RDMA)");
    sendto(
        sock.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .expect("send RDMA_NLDEV_CMD_NEWLINK");
    // The answer is an NLMSG_ERROR message: its header, then the error code (0: done).
    let mut buf = [0u8; 4096];
    let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv the netlink answer");
    assert!(n >= 20, "short netlink answer: {:?}", &buf[..n]);
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    let code = i32::from_ne_bytes(buf[16..20].try_into().unwrap());
    assert!(
        kind == libc::NLMSG_ERROR as u16 && code == 0,
        "rdma link add {dev} type rxe netdev {netdev}: {}",
        std::io::Error::from_raw_os_error(-code)
    );
    assert!(
        Path::new("/sys/class/infiniband").join(dev).exists(),
        "no /sys/class/infiniband/{dev} after the rxe link was made"
    );
}

/// `update --resources -` with `resources` on stdin.
fn update_json(berth: &Berth, id: &str, resources: Value) -> std::process::Output {
    use std::io::Write;
    let mut child = berth
        .cmd()
        .args(["update", "--resources", "-", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(resources.to_string().as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// The rdma.max line of `dev` in the container's cgroup (the kernel ends each with a space).
fn rdma_max_line(berth: &Berth, id: &str, dev: &str) -> String {
    let text = cg_read(berth, id, "rdma.max");
    let line = text
        .lines()
        .map(str::trim_end)
        .find(|l| l.split(' ').next() == Some(dev))
        .unwrap_or_else(|| panic!("no {dev} in rdma.max: {text:?}"));
    if in_cgv2_vm() {
        assert_eq!(text, line, "the VM has one RDMA device");
    }
    line.to_string()
}

#[test]
fn rdma_limits_are_written_and_updated_and_an_unknown_device_is_refused() {
    if !rdma_controller() {
        assert!(!in_cgv2_vm(), "the cgroup v2 VM has no rdma controller");
        // Asked for, but the host cannot: a clear error, not silence.
        create_fails(
            "cg-rdma-nocg",
            |c| c["linux"]["resources"] = json!({"rdma": {"rxe0": {"hcaHandles": 2}}}),
            &["linux.resources.rdma: ", "rdma", "controller"],
        );
        return;
    }
    // A name the kernel does not know: one line naming it; nothing is left.
    create_fails(
        "cg-rdma-nodev",
        |c| c["linux"]["resources"] = json!({"rdma": {"nosuchrdma9": {"hcaHandles": 1}}}),
        &["linux.resources.rdma: ", "no RDMA device \"nosuchrdma9\""],
    );
    let Some(dev) = rdma_device() else {
        skipped(
            "rdma_limits_are_written_and_updated_and_an_unknown_device_is_refused",
            "an rdma controller but no RDMA device to limit",
        );
        return;
    };
    let id = unique("cg-rdma");
    let mut b = Bundle::new(&id);
    b.sh("exec sleep 1000").edit(|c| {
        c["linux"]["resources"] = json!({"rdma": {&dev: {"hcaHandles": 2, "hcaObjects": 100}}})
    });
    let berth = Berth::new();
    start(&berth, &b, &id);
    assert_eq!(
        rdma_max_line(&berth, &id, &dev),
        format!("{dev} hca_handle=2 hca_object=100")
    );
    // runc's update has no rdma flag: the spec's JSON. A limit left out keeps its value.
    let out = update_json(&berth, &id, json!({"rdma": {&dev: {"hcaHandles": 5}}}));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        rdma_max_line(&berth, &id, &dev),
        format!("{dev} hca_handle=5 hca_object=100")
    );
    // An unknown device, or a limit above the kernel's int, changes nothing, not even the known device's limit
    // (which would be written first: devices go in name order, and "zz..." comes last).
    for (bad, want) in [
        (
            json!({"rdma": {&dev: {"hcaObjects": 7}, "zznosuchrdma": {"hcaHandles": 1}}}),
            "no RDMA device \"zznosuchrdma\"",
        ),
        (
            json!({"rdma": {&dev: {"hcaObjects": 7, "hcaHandles": 4294967295u32}}}),
            "hcaHandles 4294967295 is more than the kernel's 2147483647",
        ),
    ] {
        let out = update_json(&berth, &id, bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
        assert!(err.contains(&id) && err.contains(want), "{err}");
        assert_eq!(
            rdma_max_line(&berth, &id, &dev),
            format!("{dev} hca_handle=5 hca_object=100")
        );
    }
    assert_eq!(berth.status(&id), "running");
    let cgroups = berth.cgroup_dirs(&id);
    berth.ok(&["delete", "--force", &id]);
    assert_gone(&berth, &id, &cgroups, None);
}

/// Issue 10, item 4: on cgroup v2 `berth exec` clones into the container's cgroup through a descriptor of its
/// directory (CLONE_INTO_CGROUP). A container that replaces its process.cwd with a symlink to /proc/self/fd/N must
/// not get that host directory (or any other descriptor of berth) as the cwd of a plain `berth exec`: the cwd is
/// resolved inside the container's root without magic links, and the descriptor is closed before the process
/// exists.
#[test]
fn exec_cwd_never_reaches_the_cgroup_directory_descriptor() {
    if !v2() {
        skipped(
            "exec_cwd_never_reaches_the_cgroup_directory_descriptor",
            "needs cgroup v2 (make test-cgv2 runs it)",
        );
        return;
    }
    let berth = Berth::new();
    let id = unique("cg-exec-cwd");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]).edit(|c| {
        c["process"]["cwd"] = json!("/work");
        c["root"]["readonly"] = json!(false);
    });
    berth.create_ok(&b, &id);
    berth.ok(&["start", &id]);
    for n in 3..12 {
        let swap = format!("rm -rf /work; ln -s /proc/self/fd/{n} /work");
        berth.ok(&["exec", "--cwd", "/", &id, "sh", "-c", &swap]);
        let out = berth
            .cmd()
            .args(["exec", &id, "sh", "-c", "pwd; ls"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stdout.contains("cgroup.procs"),
            "fd {n}: exec's cwd was a host cgroup directory: {stdout}"
        );
        assert!(!out.status.success(), "fd {n}: exec ran with cwd {stdout}");
        assert!(
            stderr.contains("cwd /work") && stderr.contains(&id),
            "{stderr}"
        );
    }
    berth.ok(&["delete", "--force", &id]);
}

#[test]
fn update_memory_unlimited_also_lifts_memory_plus_swap_on_v1() {
    if v2() || !Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        skipped(
            "update_memory_unlimited_also_lifts_memory_plus_swap_on_v1",
            "needs cgroup v1 with swap accounting (memory.memsw.*)",
        );
        return;
    }
    let id = unique("cg-memunl");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20, "swap": 128 << 20}})
    });
    let berth = Berth::new();
    start(&berth, &b, &id);
    berth.ok(&["update", "--memory", "-1", &id]);
    // The kernel's "unlimited", as the hierarchy's root shows it.
    let root = std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").unwrap();
    assert_eq!(cg_read(&berth, &id, "memory.limit_in_bytes"), root.trim());
    assert_eq!(
        cg_read(&berth, &id, "memory.memsw.limit_in_bytes"),
        root.trim()
    );
    berth.ok(&["delete", "--force", &id]);
}

/// Removes what a test made under berth-tests/<name> in every hierarchy, deepest first.
struct TreeGuard(Vec<PathBuf>);

impl Drop for TreeGuard {
    fn drop(&mut self) {
        for top in &self.0 {
            let _ = std::process::Command::new("find")
                .arg(top)
                .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                .stderr(Stdio::null())
                .status();
        }
        remove_test_cgroup_parents();
    }
}

#[test]
fn a_nested_cgroups_path_under_an_empty_cpuset_parent_starts() {
    // berth-tests/<id>/a exists already, made by someone else, with empty cpuset.cpus/mems: berth must fill it (and
    // b) from their parents, or the init cannot join c (ENOSPC).
    let own_cpuset = own_cgroup_dirs()
        .into_iter()
        .find(|d| d.join("cpuset.cpus").exists());
    let Some(own_cpuset) = own_cpuset.filter(|_| !v2()) else {
        skipped(
            "a_nested_cgroups_path_under_an_empty_cpuset_parent_starts",
            "no cgroup v1 cpuset hierarchy (v2 cpusets inherit when empty)",
        );
        return;
    };
    let id = unique("cg-nested");
    let top = format!("berth-tests/{id}");
    let _guard = TreeGuard(own_cgroup_dirs().iter().map(|d| d.join(&top)).collect());
    let a = own_cpuset.join(&top).join("a");
    std::fs::create_dir_all(&a).unwrap();
    assert_eq!(
        std::fs::read_to_string(a.join("cpuset.cpus"))
            .unwrap()
            .trim(),
        ""
    );
    let mut b = Bundle::new(&id);
    b.args(&["cat", "/proc/self/status"]).edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("{top}/a/b/c"));
        c["linux"]["resources"] = json!({"cpu": {"cpus": "0"}});
    });
    let berth = Berth::new();
    let (code, out, err) = berth.run_bundle(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Cpus_allowed_list:\t0\n"), "{out}");
    for dir in [a.clone(), a.join("b")] {
        let cpus = std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap();
        assert!(!cpus.trim().is_empty(), "{} left empty", dir.display());
    }
    assert!(
        !a.join("b/c").exists(),
        "the container's own cgroup is removed"
    );
}

#[test]
fn delete_removes_sub_cgroups_the_container_made_in_every_hierarchy() {
    let id = unique("cg-subcg");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    let berth = Berth::new();
    start(&berth, &b, &id);
    let dirs = berth.cgroup_dirs(&id);
    let init = berth.state(&id)["pid"].as_i64().unwrap();
    for d in &dirs {
        std::fs::create_dir_all(d.join("foo/bar")).unwrap();
        // The init moves into a sub-cgroup where the hierarchy lets it (what a container with a writable cgroup
        // mount does).
        let _ = std::fs::write(d.join("foo/cgroup.procs"), init.to_string());
    }
    berth.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
    assert_nothing_left(&berth, &id, &b);
}
