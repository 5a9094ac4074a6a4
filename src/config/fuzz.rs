//! A bounded, deterministic mutation fuzzer for config.json: random structural mutations of rich seed configs
//! (and byte-level damage to their text) go through parsing, validation and every pure translation berth does
//! before the clone (namespace plan, mount options, seccomp compilation, capability sets, hooks). Nothing may panic.
//!
//! It runs in the unit tests for a few seconds (BERTH_FUZZ_SECS to run longer, BERTH_FUZZ_SEED for another
//! sequence); a panic prints the seed, the iteration and the input.
//!
//! `linux.resources` also goes through the cgroup conversions: the device rules into the eBPF program (run once by
//! the interpreter), and every other resource through the v1 and v2 managers' `apply`, writing into plain files
//! of a scratch directory laid out like a cgroup (so the kernel never sees the values; only berth's conversions
//! run).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// xorshift64*: enough randomness for mutations, no dependency; deterministic, so a failure names a case that can
/// be replayed. The seccomp differential test draws from it too.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const STRINGS: &[&str] = &[
    "",
    "/",
    "..",
    "../../etc",
    "/proc/self/fd/3",
    "a\u{0}b",
    "CAP_SYS_ADMIN",
    "CAP_BOGUS",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_NOTIFY",
    "SCMP_ARCH_X86",
    "SCMP_CMP_MASKED_EQ",
    "mkdir",
    "no_such_syscall",
    "ro",
    "rbind",
    "rshared",
    "idmap",
    "mode=0755",
    "pid",
    "user",
    "network",
    "RLIMIT_NOFILE",
    "1.0.2",
    "1.3.0",
    "9.9.9",
    "ééé",
];

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 1),
        2 => json!(rng.next() as i64),
        3 => json!(*rng.pick(&[
            0u64,
            1,
            5,
            6,
            7,
            255,
            256,
            4095,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX
        ])),
        4 => json!(-(rng.below(1000) as i64)),
        5 => json!(rng.below(1000) as f64 + 0.5),
        6 => json!([]),
        7 => json!({}),
        _ => json!(*rng.pick(STRINGS)),
    }
}

/// Paths to every node of `v` (object keys and array indexes).
fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(Step::Key(k.clone()));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn node<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    let mut cur = v;
    for s in path {
        cur = match s {
            Step::Key(k) => &mut cur[k.as_str()],
            Step::Index(i) => &mut cur[*i],
        };
    }
    cur
}

fn mutate(rng: &mut Rng, v: &mut Value) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let path = rng.pick(&all).clone();
    let donor = {
        let other = rng.pick(&all).clone();
        node(v, &other).clone()
    };
    let n = node(v, &path);
    match rng.below(7) {
        // Same type, new value: gets past serde's typing to the translators most of the time.
        0 | 1 => {
            *n = match n {
                Value::String(_) => json!(*rng.pick(STRINGS)),
                Value::Number(_) => json!(*rng.pick(&[
                    0u64,
                    1,
                    5,
                    7,
                    38,
                    255,
                    4095,
                    65536,
                    u32::MAX as u64,
                    u64::MAX
                ])),
                Value::Bool(b) => json!(!*b),
                _ => random_scalar(rng),
            }
        }
        2 => *n = donor,
        3 => match n {
            Value::Object(m) if !m.is_empty() => {
                let k = m.keys().nth(rng.below(m.len())).cloned().unwrap();
                m.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            _ => *n = random_scalar(rng),
        },
        4 => match n {
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                let c = a[i].clone();
                a.push(c);
            }
            Value::Object(m) => {
                m.insert(rng.pick(STRINGS).to_string(), random_scalar(rng));
            }
            _ => *n = json!([donor]),
        },
        5 => {
            if let Value::String(s) = n {
                let t = rng.pick(STRINGS);
                s.push_str(t);
            } else if let Some(x) = n.as_u64() {
                *n = json!(x.wrapping_add(rng.below(3) as u64).wrapping_sub(1));
            } else {
                *n = random_scalar(rng);
            }
        }
        _ => *n = json!({ *rng.pick(STRINGS): donor }),
    }
}

fn damage_bytes(rng: &mut Rng, text: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if text.is_empty() {
            return;
        }
        let i = rng.below(text.len());
        match rng.below(4) {
            0 => text[i] = rng.next() as u8,
            1 => {
                text.remove(i);
            }
            2 => text.insert(i, *rng.pick(b"{}[]\",:0-e\\")),
            _ => text.truncate(i),
        }
    }
}

fn seeds() -> Vec<Value> {
    let mut rich: Value = serde_json::from_str(&super::default_config(false, true, 0, 0)).unwrap();
    rich["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    rich["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL", "CAP_CHOWN"]);
    rich["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]);
    rich["process"]["oomScoreAdj"] = json!(100);
    rich["process"]["apparmorProfile"] = json!("p");
    rich["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    rich["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    rich["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    rich["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    rich["linux"]["resources"] = json!({
        "memory": {"limit": 1048576, "swap": 2097152}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
        "pids": {"limit": 10}, "devices": [{"allow": false, "access": "rwm"}],
        "blockIO": {"weight": 100}, "unified": {"memory.high": "max"}});
    rich["linux"]["devices"] =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    rich["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro", "rslave"]}),
    );
    rich["hooks"] = json!({"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]});
    rich["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
        "syscalls": [
            {"names": ["read", "write", "openat", "mkdir"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_GE"}]},
            {"names": ["rmdir"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["sync"], "action": "SCMP_ACT_TRACE", "errnoRet": 3}
        ]
    });
    let rootless: Value =
        serde_json::from_str(&super::default_config(true, true, 1000, 1000)).unwrap();
    vec![rich, rootless]
}

/// Everything berth derives from a config before the clone; errors are fine, panics are not. Returns whether
/// the input parsed (and so reached the translators).
fn translate(raw: &[u8]) -> bool {
    let path = Path::new("config.json");
    let Ok(spec) = super::parse(path, raw) else {
        return false;
    };
    let valid = super::Config::from_spec(path, spec.clone()).is_ok();
    if let Some(linux) = spec.linux() {
        if let Ok(ns) = super::Namespaces::from_linux(linux) {
            let _ = crate::namespaces::Plan::open(&ns);
        }
    }
    let _ = super::Hooks::from_oci(spec.hooks().clone());
    for m in spec.mounts().iter().flatten() {
        let _ = super::mount_options::parse(m.options().as_deref().unwrap_or(&[]));
    }
    if let Some(linux) = spec.linux() {
        if let Some(s) = linux.seccomp() {
            if let Ok(p) = crate::config::seccomp::compile::compile(s) {
                assert!(p.insns.len() <= crate::config::seccomp::compile::MAX_INSNS);
            }
        }
    }
    if let Some(p) = spec.process() {
        if let Ok(p) = super::Process::from_oci(p.clone()) {
            let _ = crate::process::caps::CapSets::for_kernel(&p.capabilities);
        }
    }
    if let Some(linux) = spec.linux() {
        cgroup_conversions(linux);
    }
    let _ = valid;
    true
}

/// Files that the v1 and v2 managers look for before they write (a scratch stand-in for a cgroup directory).
const CGROUP_FILES: &[&str] = &[
    "cgroup.controllers",
    "cgroup.subtree_control",
    "cgroup.procs",
    "cgroup.freeze",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpu.shares",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.cfs_burst_us",
    "cpu.rt_runtime_us",
    "cpu.rt_period_us",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "memory.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.swappiness",
    "memory.oom_control",
    "memory.use_hierarchy",
    "memory.kmem.tcp.limit_in_bytes",
    "memory.usage_in_bytes",
    "pids.max",
    "io.max",
    "io.weight",
    "io.bfq.weight",
    "blkio.weight",
    "blkio.weight_device",
    "blkio.bfq.weight",
    "blkio.bfq.weight_device",
    "blkio.leaf_weight",
    "blkio.leaf_weight_device",
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
    "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device",
    "hugetlb.2MB.max",
    "hugetlb.2MB.limit_in_bytes",
    "hugetlb.1GB.max",
    "hugetlb.1GB.limit_in_bytes",
    "net_cls.classid",
    "net_prio.ifpriomap",
    "rdma.max",
];

fn scratch_cgroup() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-fuzz-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in CGROUP_FILES {
            std::fs::write(dir.join(f), "").unwrap();
        }
        std::fs::write(
            dir.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma",
        )
        .unwrap();
        dir
    })
}

fn cgroup_conversions(linux: &oci_spec::runtime::Linux) {
    use crate::cgroups::Manager;
    let Ok(r) = super::Resources::for_create(linux.resources().clone()) else {
        return;
    };
    if let Some(rules) = r.devices() {
        let prog = crate::cgroups::devices::bpf_program(rules);
        let _ = crate::cgroups::devices::interpret(&prog, 'c', 1, 3, 7);
    }
    // Device rules are loaded into the kernel by `apply`; their translation is covered just above.
    let r = r.without_devices();
    let dir = scratch_cgroup();
    let v2 = crate::cgroups::v2::Manager::new(crate::cgroups::v2::Placement {
        mountpoint: dir.to_path_buf(),
        dir: dir.to_path_buf(),
    });
    let _ = v2.apply(&r);
    let v1 = crate::cgroups::v1::Manager::new(
        [(dir.display().to_string(), dir.to_path_buf())]
            .into_iter()
            .collect(),
    );
    let _ = v1.apply(&r);
    if let Ok(u) = super::Resources::for_update(linux.resources().clone().unwrap_or_default()) {
        let _ = v1.apply(&u);
    }
}

#[test]
fn config_translation_never_panics() {
    let secs: u64 = std::env::var("BERTH_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("BERTH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_be27);
    let mut rng = Rng(seed | 1);
    let seeds = seeds();
    for s in &seeds {
        // The seeds themselves must get through (a fuzzer whose inputs all fail to parse tests nothing).
        super::parse(Path::new("config.json"), s.to_string().as_bytes()).expect("seed parses");
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut iterations, mut parsed) = (0u64, 0u64);
    while Instant::now() < deadline {
        let mut v = rng.pick(&seeds).clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut v);
        }
        let mut raw = serde_json::to_vec(&v).unwrap();
        if rng.below(8) == 0 {
            damage_bytes(&mut rng, &mut raw);
        }
        match std::panic::catch_unwind(|| translate(&raw)) {
            Ok(true) => parsed += 1,
            Ok(false) => {}
            Err(p) => {
                eprintln!(
                    "fuzz: panic at iteration {iterations} (seed {seed}) on:\n{}",
                    String::from_utf8_lossy(&raw)
                );
                std::panic::resume_unwind(p);
            }
        }
        iterations += 1;
    }
    let _ = std::fs::remove_dir_all(scratch_cgroup());
    eprintln!("fuzz: {iterations} inputs, {parsed} parsed and translated");
    assert!(
        iterations > 100 && parsed * 8 > iterations,
        "{iterations} inputs, only {parsed} parsed"
    );
}
