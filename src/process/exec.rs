//! The user program: finding it in the container (PATH from the container's env, like runc), building argv/envp,
//! and the final execve.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("exec {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec {path:?}: {reason}")]
    NotExecutable { path: PathBuf, reason: String },
    #[error("exec: argument or environment contains a NUL byte")]
    Nul,
}

/// The program and its C strings, prepared before `start` so that a missing program fails `create`.
pub struct Program {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// Value of `key` in a KEY=value list.
/// A failed execve in runc's words (Go's errno texts are glibc's in lower case), which clients and runc's suite
/// match: `exec /run.sh: no such file or directory`.
pub fn exec_failure(path: &str, errno: nix::errno::Errno) -> String {
    format!("exec {path}: {}", errno.desc().to_lowercase())
}

pub fn env_get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Resolves args[0] against PATH (the container's), checking it is an executable regular file.
pub fn find_program(arg0: &str, env: &[String], cwd: &Path) -> Result<PathBuf, Error> {
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        };
        check_executable(&p)?;
        return Ok(p);
    }
    let path = env_get(env, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if check_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(Error::NotFound(arg0.to_string()))
}

fn check_executable(p: &Path) -> Result<(), Error> {
    let bad = |reason: String| Error::NotExecutable {
        path: p.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(p).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(bad("permission denied (no execute bit)".into()));
    }
    Ok(())
}

/// HOME from the container's /etc/passwd when the config does not set it (runc does the same), else "/".
pub fn home_for(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// The program's environment: the process's (one entry per name already: `config::Process::env`), with HOME from
/// the container's /etc/passwd when the config sets none or an empty one (runc too).
pub fn program_env(env: &[String], uid: u32) -> Vec<String> {
    let mut out = env.to_vec();
    out.retain(|kv| kv != "HOME=");
    if env_get(&out, "HOME").is_none() {
        out.push(format!("HOME={}", home_for(uid)));
    }
    out
}

pub fn prepare(path: PathBuf, args: &[String], env: &[String], uid: u32) -> Result<Program, Error> {
    let cstr = |s: &str| CString::new(s).map_err(|_| Error::Nul);
    let envp = program_env(env, uid)
        .iter()
        .map(|e| cstr(e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Program {
        path: CString::new(path.into_os_string().into_encoded_bytes()).map_err(|_| Error::Nul)?,
        argv: args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
        envp,
    })
}

impl Program {
    /// The program's environment as strings (what a startContainer hook without `env` gets).
    pub fn env_strings(&self) -> Vec<String> {
        self.envp
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    /// execve, through the sealed stub when there is one (see exec_stub); returns only on failure, with the reason.
    /// `report_fd` is the close-on-exec descriptor whose EOF tells the waiting side that the program runs.
    pub fn exec(
        &self,
        stub: Option<&super::exec_stub::Stub>,
        report_fd: RawFd,
    ) -> nix::errno::Errno {
        if let Some(stub) = stub {
            // Returns only if the stub itself could not be exec'd: then the program is exec'd directly.
            let _ = stub.exec(report_fd, &self.path, &self.argv, &self.envp);
        }
        let argv: Vec<&std::ffi::CStr> = self.argv.iter().map(|a| a.as_c_str()).collect();
        let envp: Vec<&std::ffi::CStr> = self.envp.iter().map(|e| e.as_c_str()).collect();
        crate::sys::execve(&self.path, &argv, &envp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lookup_takes_the_last_definition() {
        let env = vec![
            "A=1".to_string(),
            "PATH=/x".into(),
            "AB=2".into(),
            "A=3".into(),
        ];
        assert_eq!(env_get(&env, "A"), Some("3"));
        assert_eq!(env_get(&env, "PATH"), Some("/x"));
        assert_eq!(env_get(&env, "B"), None);
    }

    #[test]
    fn an_empty_or_missing_home_is_replaced() {
        let env: Vec<String> = ["HOME=", "A=3", "C="]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let full = program_env(&env, 4242);
        assert_eq!(full, ["A=3", "C=", "HOME=/"]);
        let set: Vec<String> = vec!["A=1".into(), "HOME=/y".into()];
        assert_eq!(program_env(&set, 0), ["A=1", "HOME=/y"]);
        assert_eq!(program_env(&[], 4242), ["HOME=/"]);
    }

    #[test]
    fn path_search_finds_sh_and_reports_missing() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        let found = find_program("sh", &env, Path::new("/")).unwrap();
        assert!(found.ends_with("sh"));
        let err = find_program("definitely-not-a-program", &env, Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        assert!(find_program("/etc/passwd", &env, Path::new("/")).is_err());
    }
}
