//! `events`: runc's JSON lines. `--stats` prints one `{"type":"stats","id":...,"data":{...}}`; otherwise stats are
//! printed every `--interval` and `{"type":"oom","id":...}` as soon as the kernel reports an OOM in the cgroup,
//! until the container stops.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use crate::cli::{Cli, EventsArgs};
use crate::container::control;

#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

fn emit<T: Serialize>(kind: &str, id: &str, data: Option<T>) -> Result<()> {
    let line = serde_json::to_string(&Event { kind, id, data })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("write to stdout")
}

pub fn run(cli: &Cli, a: &EventsArgs) -> Result<i32> {
    let dir = super::existing(cli, &a.id)?;
    let interval = parse_duration(&a.interval)?;
    let cg = control::live_manager(&dir).with_context(|| format!("container {}", a.id))?;
    if a.stats {
        emit("stats", &a.id, Some(cg.stats()?))?;
        return Ok(0);
    }
    let mut oom = cg
        .oom_watch()
        .with_context(|| format!("container {}", a.id))?;
    let mut next_stats = std::time::Instant::now();
    loop {
        let now = std::time::Instant::now();
        if now >= next_stats {
            if control::stopped(&dir) {
                return Ok(0);
            }
            emit("stats", &a.id, Some(cg.stats()?))?;
            next_stats = now + interval;
        }
        let wait = next_stats.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(wait.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let ready = match oom.fd() {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, ms) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => return Err(e).context("poll for OOM events"),
                }
            }
            None => {
                std::thread::sleep(wait);
                false
            }
        };
        if ready {
            let n = oom.take();
            // The v1 eventfd also fires when the cgroup goes away: that is the end, not an OOM.
            let cgroup_exists = cg.paths().values().any(|p| p.exists());
            if n > 0 && cgroup_exists {
                emit::<()>("oom", &a.id, None)?;
            }
            if !cgroup_exists {
                return Ok(0);
            }
        }
    }
}

/// Parses a Go-style duration as runc takes it: "5s", "250ms", "1m30s", "2h".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || anyhow!("invalid --interval {s:?}: use e.g. 5s, 500ms or 1m");
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u_end..];
        total += Duration::try_from_secs_f64(n * secs).map_err(|_| bad())?;
    }
    if total.is_zero() {
        bail!("invalid --interval {s:?}: must be more than zero");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5", "s", "5x", "0s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_lines_are_runcs() {
        let e = serde_json::to_value(Event::<()> {
            kind: "oom",
            id: "c1",
            data: None,
        })
        .unwrap();
        assert_eq!(e, serde_json::json!({"type": "oom", "id": "c1"}));
    }
}
