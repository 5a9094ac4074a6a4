//! runc-style logging: `--log FILE` and `--log-format text|json`. containerd's shim reads the JSON lines back
//! (`{"level":"error","msg":…,"time":…}`) to report why a command failed.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Config {
    file: Option<PathBuf>,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn init(file: Option<PathBuf>, format: Format, debug: bool) {
    let _ = CONFIG.set(Config {
        file,
        format,
        debug,
    });
}

/// One log line in the configured format.
pub fn render(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            v.to_string()
        }
        Format::Text => format!("time={time:?} level={level} msg={msg:?}"),
    }
}

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let full = crate::time::rfc3339(t.as_secs() as i64, 0);
    // logrus style: seconds precision.
    full.replace(".000000000Z", "Z")
}

fn write(level: &str, msg: &str) {
    let Some(cfg) = CONFIG.get() else {
        return;
    };
    let Some(path) = &cfg.file else {
        return;
    };
    let line = render(cfg.format, level, msg, &now());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// An error and its causes on one line, each cause once (a message that already quotes its cause is not
/// followed by it again).
pub fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        // "container x" followed by "container x does not exist": keep only the longer one.
        if !out.is_empty() && text.starts_with(&out) {
            out = text;
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A failure: to the log file (if any), and as one plain line on stderr.
pub fn error(msg: &str) {
    write("error", msg);
    let stderr_json = CONFIG
        .get()
        .is_some_and(|c| c.file.is_none() && c.format == Format::Json);
    if stderr_json {
        eprintln!("{}", render(Format::Json, "error", msg, &now()));
    } else {
        eprintln!("berth: {msg}");
    }
}

pub fn warn(msg: &str) {
    write("warning", msg);
    if CONFIG.get().is_none_or(|c| c.file.is_none()) {
        eprintln!("berth: warning: {msg}");
    }
}

/// Whether debug lines are wanted (to skip gathering what only a debug line would show).
pub fn debug_enabled() -> bool {
    CONFIG.get().is_some_and(|c| c.debug)
}

/// With --debug: to the log file, or without one to stderr in the log format (as runc prints them).
pub fn debug(msg: &str) {
    let Some(cfg) = CONFIG.get().filter(|c| c.debug) else {
        return;
    };
    if cfg.file.is_some() {
        write("debug", msg);
    } else {
        eprintln!("{}", render(cfg.format, "debug", msg, &now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_runc_keys() {
        let line = render(
            Format::Json,
            "error",
            "mount \"x\": EPERM",
            "2026-01-01T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "mount \"x\": EPERM");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn chain_mentions_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = anyhow::Error::new(io)
            .context("read /b/config.json: No such file or directory (os error 2)");
        let e = e.context("container c1");
        assert_eq!(
            chain(&e),
            "container c1: read /b/config.json: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn chain_does_not_repeat_a_prefix() {
        let e = anyhow::anyhow!("container c1 does not exist").context("container c1");
        assert_eq!(chain(&e), "container c1 does not exist");
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = render(Format::Text, "error", "a \"b\"", "T");
        assert_eq!(line, r#"time="T" level=error msg="a \"b\"""#);
    }
}
