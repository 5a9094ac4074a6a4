//! Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `9`, `RTMIN+3`.

use nix::sys::signal::Signal;

/// Parses a signal the way runc does; real-time signals are accepted by number or as RTMIN+n / RTMAX-n.
pub fn parse(s: &str) -> Result<i32, String> {
    let bad = || format!("unknown signal {s:?}");
    if let Ok(n) = s.parse::<i32>() {
        // 0 probes the process without signalling it (kill(2)); clients use it to see whether it lives.
        return if (0..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|r| r.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMIN() + off;
        return if n <= libc::SIGRTMAX() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')
                .and_then(|r| r.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMAX() - off;
        return if n >= libc::SIGRTMIN() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    format!("SIG{name}")
        .parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL"), Ok(9));
        assert_eq!(parse("SIGKILL"), Ok(9));
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("HUP"), Ok(1));
        assert_eq!(parse("RTMIN+2"), Ok(libc::SIGRTMIN() + 2));
        assert_eq!(parse("SIGRTMAX-1"), Ok(libc::SIGRTMAX() - 1));
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(parse("0"), Ok(0));
        for s in ["", "-1", "999", "SIGFOO", "RTMIN+99", "RTMIN+x"] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}
