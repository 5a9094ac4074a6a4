//! `berth exec`: the process to run, built here from the container's process (or `--process FILE`) and the
//! flags, then handed finished to `container::exec`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use oci_spec::runtime::Process;
use serde_json::{json, Value};

use crate::cli::{Cli, ExecArgs};
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
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    let result = exec::existing(&cli.root, &a.id)
        .and_then(|dir| Target::open(&dir, a.ignore_paused))
        .and_then(|mut target| {
            let process = process_for(&mut target, a)?;
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

/// The process to run: `--process FILE`, or the container's own process, with the flags applied.
fn process_for(target: &mut Target, a: &ExecArgs) -> Result<Process> {
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
            check_process_fields(&v).map_err(perr)?;
            (v, true)
        }
        None => (target.take_config_process(), false),
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

fn push_unique(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    let arr = list.as_array_mut().expect("just made an array");
    if !arr.contains(&item) {
        arr.push(item);
    }
}

/// The process to run: `base` (the container's process, or a process file) with the flags applied, decoded.
pub fn build_process(
    mut v: Value,
    o: &Overrides,
    from_file: bool,
) -> std::result::Result<Process, String> {
    if !v.is_object() {
        return Err("process: expected an object".into());
    }
    if !from_file && !o.args.is_empty() {
        v["args"] = json!(o.args);
    }
    if let Some(cwd) = &o.cwd {
        v["cwd"] = json!(cwd);
    }
    for e in &o.env {
        push_unique(&mut v["env"], json!(e));
    }
    // As runc: a terminal only with -t (or a process file saying so), never from the container's config.
    if !from_file {
        v["terminal"] = json!(o.tty);
    } else if o.tty {
        v["terminal"] = json!(true);
    }
    if let Some(u) = &o.user {
        let (uid, gid) = parse_user(u).map_err(|e| e.to_string())?;
        v["user"]["uid"] = json!(uid);
        if let Some(g) = gid {
            v["user"]["gid"] = json!(g);
        }
    }
    for g in &o.additional_gids {
        push_unique(&mut v["user"]["additionalGids"], json!(g));
    }
    for cap in &o.caps {
        let name = if cap.starts_with("CAP_") {
            cap.clone()
        } else {
            format!("CAP_{}", cap.to_uppercase())
        };
        // Never inheritable: that would pass it to programs the process runs (runc's CVE-2022-29162 fix).
        // Ambient too, as runc, when the process has an inheritable set: the kernel raises it only where
        // that set (the config's) allows, and warns otherwise.
        let has_inheritable = !v["capabilities"]["inheritable"].is_null();
        for set in ["bounding", "effective", "permitted"] {
            push_unique(&mut v["capabilities"][set], json!(name));
        }
        if has_inheritable {
            push_unique(&mut v["capabilities"]["ambient"], json!(name));
        }
    }
    if o.no_new_privs {
        v["noNewPrivileges"] = json!(true);
    }
    if let Some(a) = &o.apparmor {
        v["apparmorProfile"] = json!(a);
    }
    if let Some(l) = &o.process_label {
        v["selinuxLabel"] = json!(l);
    }
    if v.get("user").is_none() {
        v["user"] = json!({"uid": 0, "gid": 0});
    }
    if v.get("cwd").is_none() {
        v["cwd"] = json!("/");
    }
    crate::config::translate_scheduler_flags(&mut v);
    let p: Process = serde_json::from_value(v).map_err(|e| format!("process: {e}"))?;
    crate::config::attrs::check(&p)?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args is empty: give a command".into());
    }
    if !p.cwd().is_absolute() {
        return Err(format!(
            "process.cwd {:?} must be an absolute path",
            p.cwd()
        ));
    }
    Ok(p)
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

    use super::*;

    fn base() -> Value {
        json!({
            "args": ["sleep", "100"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        })
    }

    #[test]
    fn flags_override_the_containers_process() {
        let o = Overrides {
            args: vec!["sh".into(), "-c".into(), "id".into()],
            cwd: Some("/tmp".into()),
            env: vec!["A=1".into()],
            tty: true,
            user: Some("1000:100".into()),
            additional_gids: vec![5, 6],
            caps: vec!["CAP_CHOWN".into(), "net_raw".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = build_process(base(), &o, false).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["sh", "-c", "id"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=1"]);
        assert_eq!(p.terminal(), Some(true));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[5, 6]);
        let caps = p.capabilities().as_ref().unwrap();
        let eff = caps.effective().as_ref().unwrap();
        assert_eq!(eff.len(), 3);
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 3);
        assert_eq!(caps.permitted().as_ref().unwrap().len(), 3);
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
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
            let mut config = base();
            config["capabilities"]["inheritable"] = inh.clone();
            config["capabilities"]["ambient"] = json!(["CAP_CHOWN"]);
            let p = build_process(config, &o, false).unwrap();
            let caps = p.capabilities().as_ref().unwrap();
            let amb = caps.ambient().as_ref().unwrap();
            assert_eq!(amb.len(), 2, "{inh}: {amb:?}");
            assert_eq!(
                caps.inheritable().as_ref().unwrap().len(),
                inh.as_array().unwrap().len()
            );
        }
    }

    #[test]
    fn terminal_comes_from_t_or_a_process_file_never_from_the_config() {
        let mut config = base();
        config["terminal"] = json!(true);
        let p = build_process(config.clone(), &Overrides::default(), false).unwrap();
        assert_eq!(p.terminal(), Some(false));
        let t = Overrides {
            tty: true,
            ..Default::default()
        };
        assert_eq!(
            build_process(base(), &t, false).unwrap().terminal(),
            Some(true)
        );
        let p = build_process(config, &Overrides::default(), true).unwrap();
        assert_eq!(p.terminal(), Some(true));
    }

    #[test]
    fn a_process_file_keeps_its_own_args() {
        let o = Overrides {
            args: vec!["ignored".into()],
            ..Default::default()
        };
        let p = build_process(base(), &o, true).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["sleep", "100"]);
    }

    #[test]
    fn bad_process_documents_are_clear_errors() {
        let mut v = base();
        v["argz"] = json!(["x"]);
        assert!(check_process_fields(&v).unwrap_err().contains("\"argz\""));
        let mut v = base();
        v["user"]["uidd"] = json!(1);
        assert!(check_process_fields(&v)
            .unwrap_err()
            .contains("process.user"));
        let mut v = base();
        v["args"] = json!("sh");
        let e = build_process(v, &Overrides::default(), true).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let mut v = base();
        v["args"] = json!([]);
        assert!(build_process(v, &Overrides::default(), true).is_err());
        let mut v = base();
        v["cwd"] = json!("rel");
        assert!(build_process(v, &Overrides::default(), true).is_err());
        assert!(check_process_fields(&base()).is_ok());
    }

    #[test]
    fn user_flag_is_numeric_uid_and_optional_gid() {
        assert_eq!(parse_user("10").unwrap(), (10, None));
        assert_eq!(parse_user("10:20").unwrap(), (10, Some(20)));
        assert!(parse_user("root").is_err());
        assert!(parse_user("1:x").is_err());
    }
}
