//! `berth exec`: the process to run, built here from the container's process (or `--process FILE`) and the
//! flags, translated as config.json's `process` is (`config::Process::from_oci`), then handed finished to
//! `container::exec`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use oci_spec::runtime as oci;
use serde_json::{json, Value};

use crate::cli::{Cli, ExecArgs};
use crate::config::Process;
use crate::container::exec::{self, ExecOptions, Target};

pub fn run(cli: &Cli, a: &ExecArgs) -> Result<i32> {
    let ctx = || format!("container {}", a.id);
    let preserve_fds = match super::check_preserve_fds(a.preserve_fds).with_context(ctx) {
        Ok(n) => n,
        Err(e) => {
            crate::logging::error(&crate::logging::chain(&e));
            return Ok(EXEC_FAILED);
        }
    };
    let opts = ExecOptions {
        console_socket: a.console_socket.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups: a.cgroup.clone(),
    };
    let result = exec::existing(&cli.root, &a.id)
        .and_then(|dir| Target::open(&dir, a.ignore_paused))
        .and_then(|target| {
            let process = process_for(&target, a)?;
            exec::exec(&target, process, &opts)
        })
        .with_context(ctx);
    match result {
        Ok(code) => Ok(code),
        // runc's exec exits 255 when it could not run the process (126/127 are left to the program's shell).
        Err(e) => {
            crate::logging::error(&crate::logging::chain(&e));
            Ok(EXEC_FAILED)
        }
    }
}

/// The status of an `exec` that failed before the process ran, as runc's.
const EXEC_FAILED: i32 = 255;

/// The process to run: `--process FILE`, or the container's own process, with the flags applied, then translated
/// as config.json's is (`config::Process::from_oci`: the same checks, the same words).
fn process_for(target: &Target, a: &ExecArgs) -> Result<Process> {
    let overrides = Overrides {
        args: a.command.clone(),
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        tty: a.tty,
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
    };
    let (base, from_file) = match &a.process {
        Some(path) => {
            let perr = |reason: String| Error::ProcessFile {
                path: path.display().to_string(),
                reason,
            };
            let text = std::fs::read(path).map_err(|e| perr(e.to_string()))?;
            let v: Value = serde_json::from_slice(&text).map_err(|e| perr(e.to_string()))?;
            (decode_process_file(v).map_err(perr)?, true)
        }
        None => (target.config_process().clone(), false),
    };
    let process =
        build_process(base, &overrides, from_file).map_err(|reason| Error::ProcessFile {
            path: a
                .process
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(from the container's config and flags)".into()),
            reason,
        })?;
    Ok(process)
}

/// The flags of `berth exec` that shape the process.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("process {path}: {reason}")]
    ProcessFile { path: String, reason: String },
    #[error("--user {0:?}: expected uid[:gid] (numbers)")]
    User(String),
}

/// The keys runtime-spec defines for `process` and its objects; anything else in a process file is refused (a
/// misspelt key would otherwise be silently ignored).
const PROCESS_KEYS: &[&str] = &[
    "terminal",
    "consoleSize",
    "user",
    "args",
    "commandLine",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "ioPriority",
    "scheduler",
    "execCPUAffinity",
];
const USER_KEYS: &[&str] = &["uid", "gid", "umask", "additionalGids", "username"];
const CAPS_KEYS: &[&str] = &[
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];
const SIZE_KEYS: &[&str] = &["height", "width"];
const RLIMIT_KEYS: &[&str] = &["type", "soft", "hard"];

fn check_keys(v: &Value, allowed: &[&str], at: &str) -> std::result::Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("{at}: expected an object"));
    };
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{at}: unknown field {k:?}"));
        }
    }
    Ok(())
}

/// Checks a process document for unknown fields (types are checked when it is decoded).
pub fn check_process_fields(v: &Value) -> std::result::Result<(), String> {
    check_keys(v, PROCESS_KEYS, "process")?;
    if let Some(u) = v.get("user") {
        check_keys(u, USER_KEYS, "process.user")?;
    }
    if let Some(c) = v.get("capabilities") {
        check_keys(c, CAPS_KEYS, "process.capabilities")?;
    }
    if let Some(s) = v.get("consoleSize") {
        check_keys(s, SIZE_KEYS, "process.consoleSize")?;
    }
    if let Some(Value::Array(rl)) = v.get("rlimits") {
        for r in rl {
            check_keys(r, RLIMIT_KEYS, "process.rlimits[]")?;
        }
    }
    Ok(())
}

/// A process file, decoded: its fields checked by name, what oci-spec requires defaulted (root, in `/`), the
/// runtime-spec's scheduler flag names accepted.
pub fn decode_process_file(mut v: Value) -> std::result::Result<oci::Process, String> {
    check_process_fields(&v)?;
    if v.get("user").is_none() {
        v["user"] = json!({"uid": 0, "gid": 0});
    }
    if v.get("cwd").is_none() {
        v["cwd"] = json!("/");
    }
    crate::config::translate_scheduler_flags(&mut v);
    serde::Deserialize::deserialize(&v).map_err(|e| {
        crate::config::name_decode_error(&v).unwrap_or_else(|| format!("process: {e}"))
    })
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The process to run: `p` (the container's process, or a process file) with the flags applied, translated.
pub fn build_process(
    mut p: oci::Process,
    o: &Overrides,
    from_file: bool,
) -> std::result::Result<Process, String> {
    if !from_file && !o.args.is_empty() {
        p.set_args(Some(o.args.clone()));
    }
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if !o.env.is_empty() {
        let env = p.env_mut().get_or_insert_with(Vec::new);
        for e in &o.env {
            push_unique(env, e.clone());
        }
    }
    // As runc: a terminal only with -t (or a process file saying so), never from the container's config.
    if !from_file {
        p.set_terminal(Some(o.tty));
    } else if o.tty {
        p.set_terminal(Some(true));
    }
    if let Some(u) = &o.user {
        let (uid, gid) = parse_user(u).map_err(|e| e.to_string())?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    if !o.additional_gids.is_empty() {
        let gids = p
            .user_mut()
            .additional_gids_mut()
            .get_or_insert_with(Vec::new);
        for g in &o.additional_gids {
            push_unique(gids, *g);
        }
    }
    if !o.caps.is_empty() {
        p.set_capabilities(Some(with_caps(p.capabilities().as_ref(), &o.caps)?));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Process::from_oci(p)
}

/// `--cap` added to the bounding, effective and permitted sets. Never inheritable: that would pass it to programs
/// the process runs (runc's CVE-2022-29162 fix). Ambient too, as runc, when the process has an inheritable set:
/// the kernel raises it only where that set (the config's) allows, and warns otherwise.
fn with_caps(
    caps: Option<&oci::LinuxCapabilities>,
    add: &[String],
) -> std::result::Result<oci::LinuxCapabilities, String> {
    let mut caps = caps.cloned().unwrap_or_else(|| {
        let mut none = oci::LinuxCapabilities::default();
        none.set_bounding(None);
        none.set_effective(None);
        none.set_inheritable(None);
        none.set_permitted(None);
        none.set_ambient(None);
        none
    });
    let has_inheritable = caps.inheritable().is_some();
    for name in add {
        // Decoded as config.json's names are (CAP_ prefix optional, any case).
        let cap: oci::Capability = serde_json::from_value(json!(name))
            .map_err(|_| format!("--cap {name:?}: unknown capability"))?;
        let with = |set: &Option<oci::Capabilities>| {
            let mut set = set.clone().unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        caps.set_bounding(with(caps.bounding()));
        caps.set_effective(with(caps.effective()));
        caps.set_permitted(with(caps.permitted()));
        if has_inheritable {
            caps.set_ambient(with(caps.ambient()));
        }
    }
    Ok(caps)
}

/// `uid[:gid]`, numeric as runc takes it.
pub fn parse_user(s: &str) -> std::result::Result<(u32, Option<u32>), Error> {
    let bad = || Error::User(s.to_string());
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use caps::Capability;

    use super::*;

    fn base_json() -> Value {
        json!({
            "args": ["sleep", "100"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        })
    }

    fn decode(v: Value) -> oci::Process {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> oci::Process {
        decode(base_json())
    }

    #[test]
    fn flags_override_the_containers_process() {
        let o = Overrides {
            args: vec!["sh".into(), "-c".into(), "id".into()],
            cwd: Some("/tmp".into()),
            env: vec!["A=1".into(), "PATH=/sbin".into()],
            tty: true,
            user: Some("1000:100".into()),
            additional_gids: vec![5, 6, 5],
            caps: vec!["CAP_CHOWN".into(), "net_raw".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = build_process(base(), &o, false).unwrap();
        assert_eq!(p.args, ["sh", "-c", "id"]);
        assert_eq!(p.cwd, Path::new("/tmp"));
        // -e overrides the config's definition of a name (the last one wins).
        assert_eq!(p.env, ["A=1", "PATH=/sbin"]);
        assert!(p.terminal);
        assert_eq!((p.user.uid, p.user.gid), (1000, 100));
        assert_eq!(p.user.additional_gids, [5, 6]);
        let caps = &p.capabilities;
        let three: caps::CapsHashSet = [
            Capability::CAP_KILL,
            Capability::CAP_CHOWN,
            Capability::CAP_NET_RAW,
        ]
        .into_iter()
        .collect();
        assert_eq!(caps.effective, three);
        assert_eq!(caps.bounding, three);
        assert_eq!(caps.permitted, three);
        assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
        assert!(p.no_new_privileges);
    }

    /// As runc: given an inheritable set (even an empty one), `--cap` goes into ambient as well, never into
    /// inheritable; the kernel keeps it in ambient only if the config made it inheritable.
    #[test]
    fn cap_goes_to_ambient_only_when_the_process_has_an_inheritable_set() {
        let o = Overrides {
            caps: vec!["CAP_SYSLOG".into()],
            ..Default::default()
        };
        for inh in [json!(["CAP_CHOWN", "CAP_SYSLOG"]), json!([])] {
            let mut config = base_json();
            config["capabilities"]["inheritable"] = inh.clone();
            config["capabilities"]["ambient"] = json!(["CAP_CHOWN"]);
            let p = build_process(decode(config), &o, false).unwrap();
            let caps = &p.capabilities;
            assert_eq!(caps.ambient.len(), 2, "{inh}: {:?}", caps.ambient);
            assert_eq!(caps.inheritable.len(), inh.as_array().unwrap().len());
        }
        let mut none = base_json();
        none.as_object_mut().unwrap().remove("capabilities");
        let p = build_process(decode(none), &o, false).unwrap();
        assert_eq!(p.capabilities.bounding.len(), 1);
        assert!(p.capabilities.ambient.is_empty() && p.capabilities.inheritable.is_empty());
        let bogus = Overrides {
            caps: vec!["CAP_BOGUS".into()],
            ..Default::default()
        };
        let e = build_process(base(), &bogus, false).unwrap_err();
        assert_eq!(e, "--cap \"CAP_BOGUS\": unknown capability");
    }

    #[test]
    fn terminal_comes_from_t_or_a_process_file_never_from_the_config() {
        let mut config = base_json();
        config["terminal"] = json!(true);
        let p = build_process(decode(config.clone()), &Overrides::default(), false).unwrap();
        assert!(!p.terminal);
        let t = Overrides {
            tty: true,
            ..Default::default()
        };
        assert!(build_process(base(), &t, false).unwrap().terminal);
        let p = build_process(decode(config), &Overrides::default(), true).unwrap();
        assert!(p.terminal);
    }

    #[test]
    fn a_process_file_keeps_its_own_args() {
        let o = Overrides {
            args: vec!["ignored".into()],
            ..Default::default()
        };
        let p = build_process(base(), &o, true).unwrap();
        assert_eq!(p.args, ["sleep", "100"]);
    }

    type Edit = fn(&mut Value);

    /// A process file gets config.json's checks, in its words.
    #[test]
    fn bad_process_documents_are_clear_errors() {
        let file = |edit: Edit| {
            let mut v = base_json();
            edit(&mut v);
            decode_process_file(v).and_then(|p| build_process(p, &Overrides::default(), true))
        };
        let cases: [(Edit, &str); 8] = [
            (
                |v| v["argz"] = json!(["x"]),
                "process: unknown field \"argz\"",
            ),
            (
                |v| v["user"]["uidd"] = json!(1),
                "process.user: unknown field",
            ),
            (|v| v["args"] = json!("sh"), "invalid type"),
            (
                |v| v["args"] = json!([]),
                "process.args: must name a program",
            ),
            (
                |v| v["cwd"] = json!("rel"),
                "process.cwd \"rel\": must be an absolute path",
            ),
            (
                |v| v["env"] = json!(["A=1", "B"]),
                "process.env[1] \"B\": not KEY=value",
            ),
            (
                |v| v["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_BOGUS"]),
                "process.capabilities.bounding[1] \"CAP_BOGUS\": unknown capability",
            ),
            (
                |v| v["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]),
                "process.rlimits[0] RLIMIT_NOFILE: soft limit 2 is above the hard limit 1",
            ),
        ];
        for (edit, want) in cases {
            let e = file(edit).unwrap_err();
            assert!(e.contains(want), "{e} should contain {want}");
        }
        // What oci-spec requires and a process file may leave out.
        let mut v = base_json();
        v.as_object_mut().unwrap().remove("user");
        v.as_object_mut().unwrap().remove("cwd");
        let p =
            build_process(decode_process_file(v).unwrap(), &Overrides::default(), true).unwrap();
        assert_eq!((p.user.uid, p.cwd.as_path()), (0, Path::new("/")));
        // A flag is checked as the field it sets.
        let o = Overrides {
            cwd: Some("rel".into()),
            ..Default::default()
        };
        assert!(build_process(base(), &o, false)
            .unwrap_err()
            .contains("process.cwd"));
    }

    #[test]
    fn user_flag_is_numeric_uid_and_optional_gid() {
        assert_eq!(parse_user("10").unwrap(), (10, None));
        assert_eq!(parse_user("10:20").unwrap(), (10, Some(20)));
        assert!(parse_user("root").is_err());
        assert!(parse_user("1:x").is_err());
    }
}
