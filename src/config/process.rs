//! `process` translated once into berth's own [`Process`], for config.json and for the process `exec` runs (the
//! container's, or an `exec --process` file, with the flags applied): every refusal names its field
//! (`process.env[1] "B": not KEY=value`), and what validation guaranteed has no `Option` (args, cwd, umask, the
//! capability sets). Checks that need the kernel stay where the attribute is applied (capabilities the running
//! kernel does not know are dropped in `process::caps`; rlimits above the hard limit fail in setrlimit).

use std::path::PathBuf;
use std::str::FromStr;

use caps::{Capability, CapsHashSet};
use nix::sched::CpuSet;
use oci_spec::runtime as oci;
use serde_json::Value;

use super::attrs;

/// The umask of a process whose config gives none (runc's).
pub const DEFAULT_UMASK: u32 = 0o022;

/// A validated `process`.
#[derive(Debug, Clone)]
pub struct Process {
    /// Never empty; `args[0]` is not empty.
    pub args: Vec<String>,
    /// `KEY=value` entries, one per name, the last definition kept, in the order of the last definitions (as runc
    /// hands the environment over). HOME is filled in at exec time, from the container's /etc/passwd.
    pub env: Vec<String>,
    /// Absolute.
    pub cwd: PathBuf,
    pub user: User,
    pub terminal: bool,
    /// (height, width) the pty is sized to, if given.
    pub console_size: Option<(u64, u64)>,
    /// Absent sets are empty.
    pub capabilities: Capabilities,
    /// In config order, each resource at most once, soft never above hard.
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    /// Not empty when set (an empty profile or label is none).
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
    pub oom_score_adj: Option<i32>,
    /// Checked: a level in 0..=7.
    pub io_priority: Option<oci::LinuxIOPriority>,
    /// Checked against runc's rules for the policy.
    pub scheduler: Option<oci::Scheduler>,
    pub exec_cpu_affinity: ExecCpuAffinity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// [`DEFAULT_UMASK`] when the config gives none.
    pub umask: u32,
    /// Without duplicates, first occurrence first (the kernel would keep a duplicate; runc removes them too).
    pub additional_gids: Vec<u32>,
}

/// The five capability sets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    /// The RLIMIT_* number setrlimit takes.
    pub resource: u32,
    /// The config's name, for messages (`RLIMIT_NOFILE`).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// `execCPUAffinity`, its CPU lists read once.
#[derive(Debug, Clone, Default)]
pub struct ExecCpuAffinity {
    pub initial: Option<CpuList>,
    pub final_: Option<CpuList>,
}

/// A CPU list as the config wrote it (for messages) and the set it names.
#[derive(Debug, Clone)]
pub struct CpuList {
    pub text: String,
    pub cpus: CpuSet,
}

impl Process {
    /// Translates and checks a decoded `process`; the error names the field.
    pub fn from_oci(p: oci::Process) -> Result<Process, String> {
        if p.command_line().is_some() {
            return Err("process.commandLine is Windows-only: give process.args".into());
        }
        let args = match p.args() {
            Some(args) if !args.is_empty() && !args[0].is_empty() => args.clone(),
            _ => return Err("process.args: must name a program".into()),
        };
        if !p.cwd().is_absolute() {
            return Err(format!(
                "process.cwd {:?}: must be an absolute path",
                p.cwd()
            ));
        }
        let env = env(p.env().as_deref().unwrap_or_default())?;
        let user = user(p.user())?;
        let capabilities = match p.capabilities() {
            Some(c) => capabilities(c)?,
            None => Capabilities::default(),
        };
        let rlimits = rlimits(p.rlimits().as_deref().unwrap_or_default())?;
        if let Some(s) = p.scheduler() {
            attrs::scheduler(s)?;
        }
        if let Some(io) = p.io_priority() {
            attrs::io_priority(io)?;
        }
        let exec_cpu_affinity = match p.exec_cpu_affinity() {
            Some(a) => exec_cpu_affinity(a)?,
            None => ExecCpuAffinity::default(),
        };
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Ok(Process {
            args,
            env,
            cwd: p.cwd().clone(),
            user,
            terminal: p.terminal().unwrap_or(false),
            console_size: p.console_size().map(|b| (b.height(), b.width())),
            capabilities,
            rlimits,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            apparmor_profile: non_empty(p.apparmor_profile()),
            selinux_label: non_empty(p.selinux_label()),
            oom_score_adj: p.oom_score_adj(),
            io_priority: *p.io_priority(),
            scheduler: p.scheduler().clone(),
            exec_cpu_affinity,
        })
    }
}

/// Each entry `KEY=value`, then one per name ([`dedup_env`]).
fn env(env: &[String]) -> Result<Vec<String>, String> {
    for (i, e) in env.iter().enumerate() {
        if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
            return Err(format!("process.env[{i}] {e:?}: not KEY=value"));
        }
    }
    Ok(dedup_env(env))
}

/// The environment as runc hands it over: one entry per name, the last definition kept, in the order of the last
/// definitions.
fn dedup_env(env: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = env
        .iter()
        .rev()
        .filter(|kv| seen.insert(kv.split_once('=').map_or(kv.as_str(), |(k, _)| k)))
        .cloned()
        .collect();
    out.reverse();
    out
}

/// (uid_t)-1 tells setresuid/setresgid "leave unchanged": as a configured id it would leave the process root.
const NO_ID: u32 = u32::MAX;

fn user(u: &oci::User) -> Result<User, String> {
    if u.username().is_some() {
        return Err("process.user.username is Windows-only: give process.user.uid/gid".into());
    }
    let unchanged = |field: &str, id: u32| {
        format!("process.user.{field} {id}: not a valid id ((uid_t)-1 means \"unchanged\" to the kernel)")
    };
    if u.uid() == NO_ID {
        return Err(unchanged("uid", u.uid()));
    }
    if u.gid() == NO_ID {
        return Err(unchanged("gid", u.gid()));
    }
    let mut additional_gids: Vec<u32> = Vec::new();
    for (i, g) in u.additional_gids().iter().flatten().enumerate() {
        if *g == NO_ID {
            return Err(unchanged(&format!("additionalGids[{i}]"), *g));
        }
        if !additional_gids.contains(g) {
            additional_gids.push(*g);
        }
    }
    Ok(User {
        uid: u.uid(),
        gid: u.gid(),
        umask: u.umask().unwrap_or(DEFAULT_UMASK),
        additional_gids,
    })
}

/// The capability sets' names in config order.
const CAP_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

fn capabilities(c: &oci::LinuxCapabilities) -> Result<Capabilities, String> {
    let [bounding, effective, inheritable, permitted, ambient] = [
        c.bounding(),
        c.effective(),
        c.inheritable(),
        c.permitted(),
        c.ambient(),
    ]
    .into_iter()
    .zip(CAP_SETS)
    .map(|(set, name)| cap_set(set, name))
    .collect::<Result<Vec<_>, _>>()?
    .try_into()
    .expect("five sets");
    Ok(Capabilities {
        bounding,
        effective,
        permitted,
        inheritable,
        ambient,
    })
}

/// oci-spec's names → the caps crate's (a name oci-spec decodes but the caps crate lacks is an error here; the
/// position within the set is gone once decoded, see [`name_decode_error`] for names neither knows).
fn cap_set(set: &Option<oci::Capabilities>, name: &str) -> Result<CapsHashSet, String> {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        let cap = format!("CAP_{c}");
        let cap = Capability::from_str(&cap)
            .map_err(|_| format!("process.capabilities.{name} {cap:?}: unknown capability"))?;
        out.insert(cap);
    }
    Ok(out)
}

fn rlimits(rlimits: &[oci::PosixRlimit]) -> Result<Vec<Rlimit>, String> {
    let mut out: Vec<Rlimit> = Vec::with_capacity(rlimits.len());
    for (i, r) in rlimits.iter().enumerate() {
        let name = r.typ().to_string();
        if let Some(first) = rlimits[..i].iter().position(|o| o.typ() == r.typ()) {
            // runtime-spec: "If rlimits contains duplicated entries with same type, the runtime MUST generate an
            // error".
            return Err(format!(
                "process.rlimits[{i}]: {name} is listed twice (also process.rlimits[{first}])"
            ));
        }
        if r.soft() > r.hard() {
            return Err(format!(
                "process.rlimits[{i}] {name}: soft limit {} is above the hard limit {}",
                r.soft(),
                r.hard()
            ));
        }
        out.push(Rlimit {
            resource: resource(r.typ()),
            name,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    Ok(out)
}

fn resource(t: oci::PosixRlimitType) -> u32 {
    use oci::PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Both lists read (the format was checked when the config was decoded; the range here).
fn exec_cpu_affinity(a: &oci::ExecCPUAffinity) -> Result<ExecCpuAffinity, String> {
    let read = |what: &str, list: &Option<String>| {
        list.as_ref()
            .map(|text| {
                attrs::cpu_list(text)
                    .map(|cpus| CpuList {
                        text: text.clone(),
                        cpus,
                    })
                    .map_err(|e| format!("process.execCPUAffinity.{what} {e}"))
            })
            .transpose()
    };
    Ok(ExecCpuAffinity {
        initial: read("initial", a.initial())?,
        final_: read("final", a.cpu_affinity_final())?,
    })
}

/// Why a `process` object (as JSON) failed to decode, naming the field, where oci-spec's message names neither
/// field nor position: a capability or rlimit type it does not know. Only called once decoding failed.
pub fn name_decode_error(process: &Value) -> Option<String> {
    for set in CAP_SETS {
        let names = process
            .get("capabilities")
            .and_then(|c| c.get(set))
            .and_then(Value::as_array);
        for (i, n) in names.into_iter().flatten().enumerate() {
            if n.is_string() && serde_json::from_value::<oci::Capability>(n.clone()).is_err() {
                return Some(format!(
                    "process.capabilities.{set}[{i}] {n}: unknown capability"
                ));
            }
        }
    }
    let rlimits = process.get("rlimits").and_then(Value::as_array);
    for (i, r) in rlimits.into_iter().flatten().enumerate() {
        let Some(t) = r.get("type").filter(|t| t.is_string()) else {
            continue;
        };
        if serde_json::from_value::<oci::PosixRlimitType>(t.clone()).is_err() {
            return Some(format!("process.rlimits[{i}].type {t}: unknown rlimit"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
    }

    fn translate(v: Value) -> Result<Process, String> {
        let p: oci::Process = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Process::from_oci(p)
    }

    fn refusal(edit: impl FnOnce(&mut Value)) -> String {
        let mut v = base();
        edit(&mut v);
        translate(v).unwrap_err()
    }

    #[test]
    fn a_minimal_process_gets_the_defaults() {
        let p = translate(base()).unwrap();
        assert_eq!(p.args, ["sh"]);
        assert!(p.env.is_empty() && p.rlimits.is_empty());
        assert_eq!(
            p.user,
            User {
                uid: 0,
                gid: 0,
                umask: 0o022,
                additional_gids: vec![]
            }
        );
        assert_eq!(p.capabilities, Capabilities::default());
        assert!(!p.terminal && !p.no_new_privileges && p.console_size.is_none());
        assert!(p.exec_cpu_affinity.initial.is_none() && p.exec_cpu_affinity.final_.is_none());
    }

    type Edit = Box<dyn FnOnce(&mut Value)>;

    #[test]
    fn each_refusal_names_its_field() {
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["args"] = json!([])),
                "process.args: must name a program",
            ),
            (
                Box::new(|v| v["args"] = json!(["", "x"])),
                "process.args: must name a program",
            ),
            (
                Box::new(|v| v.as_object_mut().unwrap().remove("args").map(drop).unwrap()),
                "process.args: must name a program",
            ),
            (
                Box::new(|v| v["cwd"] = json!("rel")),
                "process.cwd \"rel\": must be an absolute path",
            ),
            (
                Box::new(|v| v["env"] = json!(["A=1", "B"])),
                "process.env[1] \"B\": not KEY=value",
            ),
            (
                Box::new(|v| v["env"] = json!(["=x"])),
                "process.env[0] \"=x\": not KEY=value",
            ),
            (
                Box::new(|v| v["commandLine"] = json!("sh")),
                "process.commandLine is Windows-only",
            ),
            (
                Box::new(|v| v["user"]["username"] = json!("root")),
                "process.user.username is Windows-only",
            ),
            (
                Box::new(|v| v["user"]["uid"] = json!(u32::MAX)),
                "process.user.uid 4294967295: not a valid id",
            ),
            (
                Box::new(|v| v["user"]["gid"] = json!(u32::MAX)),
                "process.user.gid 4294967295",
            ),
            (
                Box::new(|v| v["user"]["additionalGids"] = json!([1, u32::MAX])),
                "process.user.additionalGids[1] 4294967295",
            ),
            (
                Box::new(|v| {
                    v["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}])
                }),
                "process.rlimits[0] RLIMIT_NOFILE: soft limit 10 is above the hard limit 5",
            ),
            (
                Box::new(|v| {
                    v["rlimits"] = json!([
                        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5},
                        {"type": "RLIMIT_CORE", "soft": 1, "hard": 5},
                        {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 5}
                    ])
                }),
                "process.rlimits[2]: RLIMIT_NOFILE is listed twice (also process.rlimits[0])",
            ),
            (
                Box::new(|v| v["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 20})),
                "process.scheduler.nice",
            ),
            (
                Box::new(|v| v["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8})),
                "process.ioPriority.priority 8",
            ),
            (
                Box::new(|v| v["execCPUAffinity"] = json!({"final": "3-1"})),
                "process.execCPUAffinity.final \"3-1\": range 3-1 goes backwards",
            ),
        ];
        for (edit, want) in cases {
            let e = refusal(edit);
            assert!(e.contains(want), "{e} should contain {want}");
        }
    }

    #[test]
    fn env_keeps_the_last_definition_of_each_name() {
        let mut v = base();
        v["env"] = json!(["A=1", "HOME=", "B=2", "A=3", "C=", "B=4"]);
        assert_eq!(translate(v).unwrap().env, ["HOME=", "A=3", "C=", "B=4"]);
    }

    #[test]
    fn additional_gids_lose_duplicates_in_order_and_umask_is_kept() {
        let mut v = base();
        v["user"] = json!({"uid": 1, "gid": 2, "umask": 0o77, "additionalGids": [5, 3, 5, 1, 3]});
        let u = translate(v).unwrap().user;
        assert_eq!((u.uid, u.gid, u.umask), (1, 2, 0o77));
        assert_eq!(u.additional_gids, [5, 3, 1]);
    }

    #[test]
    fn capabilities_parse_into_five_sets() {
        let mut v = base();
        v["capabilities"] =
            json!({"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["kill"], "ambient": []});
        let c = translate(v).unwrap().capabilities;
        let set = |caps: &[Capability]| caps.iter().copied().collect::<CapsHashSet>();
        assert_eq!(
            c.bounding,
            set(&[Capability::CAP_CHOWN, Capability::CAP_KILL])
        );
        assert_eq!(c.effective, set(&[Capability::CAP_KILL]));
        assert!(c.permitted.is_empty() && c.inheritable.is_empty() && c.ambient.is_empty());
        // Every name oci-spec decodes is one the caps crate knows.
        for cap in caps::all() {
            let decoded: oci::Capability = serde_json::from_value(json!(cap.to_string())).unwrap();
            let mut v = base();
            v["capabilities"] = json!({"bounding": [decoded]});
            let c = translate(v).unwrap().capabilities;
            assert_eq!(c.bounding, set(&[cap]));
        }
    }

    #[test]
    fn attributes_are_read_once() {
        let mut v = base();
        v["execCPUAffinity"] = json!({"initial": "0-1", "final": "1"});
        v["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 6}]);
        v["apparmorProfile"] = json!("");
        v["selinuxLabel"] = json!("l");
        v["consoleSize"] = json!({"height": 24, "width": 80});
        let p = translate(v).unwrap();
        let a = &p.exec_cpu_affinity;
        assert_eq!(a.initial.as_ref().unwrap().text, "0-1");
        assert!(a.final_.as_ref().unwrap().cpus.is_set(1).unwrap());
        assert!(!a.final_.as_ref().unwrap().cpus.is_set(0).unwrap());
        assert_eq!(
            p.rlimits,
            [Rlimit {
                resource: libc::RLIMIT_NOFILE,
                name: "RLIMIT_NOFILE".into(),
                soft: 5,
                hard: 6
            }]
        );
        assert_eq!(p.apparmor_profile, None);
        assert_eq!(p.selinux_label.as_deref(), Some("l"));
        assert_eq!(p.console_size, Some((24, 80)));
    }

    #[test]
    fn names_oci_spec_refuses_are_named_with_their_field() {
        let mut v = base();
        v["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_BOGUS"]});
        assert!(serde_json::from_value::<oci::Process>(v.clone()).is_err());
        assert_eq!(
            name_decode_error(&v).unwrap(),
            "process.capabilities.bounding[2] \"CAP_BOGUS\": unknown capability"
        );
        let mut v = base();
        v["rlimits"] = json!([{"type": "RLIMIT_NOFILE"}, {"type": "RLIMIT_BOGUS"}]);
        assert_eq!(
            name_decode_error(&v).unwrap(),
            "process.rlimits[1].type \"RLIMIT_BOGUS\": unknown rlimit"
        );
        // Anything else is left to serde's message.
        let mut v = base();
        v["args"] = json!("sh");
        assert_eq!(name_decode_error(&v), None);
    }
}
