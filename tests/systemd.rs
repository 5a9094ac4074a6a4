//! `--systemd-cgroup` on this host, which has no systemd: the errors, and that nothing is left behind. The driver
//! itself is tested against a real systemd by integration/systemd/test.sh (a VM with systemd as PID 1).

mod common;

use common::*;
use serde_json::json;

fn create_fails(berth: &Berth, b: &Bundle, id: &str, want: &[&str]) {
    create_fails_with(berth, &["--systemd-cgroup"], &b.dir, id, want);
}

#[test]
fn cgroups_path_not_in_slice_prefix_name_form() {
    let berth = Berth::new();
    for path in [
        "berth-tests/x",
        "/abs/path",
        "a.slice:b",
        "a:b:c:d",
        "notaslice:p:n",
    ] {
        let id = unique("sdbadpath");
        let mut b = Bundle::new(&id);
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
        create_fails(&berth, &b, &id, &[path, "slice"]);
    }
}

/// A malformed `org.systemd.property.*` annotation is refused before systemd is asked (no bus needed), with the
/// annotation named, runc's wording.
#[test]
fn malformed_systemd_property_annotation() {
    let berth = Berth::new();
    for (key, value, want) in [
        (
            "org.systemd.property.TimeoutStopUSec",
            "uint64 soon",
            "value parse error",
        ),
        ("org.systemd.property.Collect-Mode", "'x'", "name incorrect"),
        ("org.systemd.property.TimeoutStopSec", "'x'", "not a number"),
    ] {
        let id = unique("sdannot");
        let mut b = Bundle::new(&id);
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}"));
            c["annotations"] = json!({ key: value });
        });
        create_fails(&berth, &b, &id, &[key, want]);
    }
}

#[test]
fn systemd_unreachable_names_the_sockets() {
    let sockets = ["/run/dbus/system_bus_socket", "/run/systemd/private"];
    if sockets.iter().any(|s| std::path::Path::new(s).exists()) {
        skipped(
            "systemd_unreachable_names_the_sockets",
            "this host has a D-Bus or systemd socket (integration/systemd/tests.sh covers it by hiding them)",
        );
        return;
    }
    let berth = Berth::new();
    let id = unique("sdnobus");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}")));
    create_fails(&berth, &b, &id, &sockets);
}

// ------------------------------------------------------------------------------ a fake systemd on the bus ------
//
// A D-Bus peer of a few dozen lines stands in for the bus and systemd: berth finds it where it finds the system
// bus (/run/dbus/system_bus_socket, a symlink to it in a private mount namespace with a tmpfs on /run), so the
// faults a real systemd rarely shows on demand (a job that never ends, a job that fails) are shown for real,
// with berth's product code unchanged.

mod fake_bus {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::PathBuf;
    use std::sync::mpsc;

    /// How the fake systemd answers StartTransientUnit.
    #[derive(Clone, Copy)]
    pub enum Job {
        /// A job path, and never a JobRemoved.
        Hangs,
        /// A job path, then JobRemoved with "failed"; the unit's Result is "resources".
        Fails,
    }

    pub struct Call {
        pub member: String,
        /// The pid of a StartTransientUnit's PIDs property.
        pub pid: Option<u32>,
    }

    struct Msg {
        serial: u32,
        member: String,
        body: Vec<u8>,
        body_at: usize,
    }

    fn align(n: usize, a: usize) -> usize {
        n.div_ceil(a) * a
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Reads one little-endian message: its serial, member and body (with the body's offset, for alignment).
    fn read_msg(s: &mut UnixStream) -> Option<Msg> {
        let mut head = [0u8; 16];
        s.read_exact(&mut head).ok()?;
        assert_eq!(head[0], b'l', "berth sends little-endian messages");
        let (body_len, fields_len) = (u32_at(&head, 4) as usize, u32_at(&head, 12) as usize);
        let body_at = align(16 + fields_len, 8);
        let mut m = head.to_vec();
        m.resize(body_at + body_len, 0);
        s.read_exact(&mut m[16..]).ok()?;
        let mut member = String::new();
        let mut i = 16;
        while i < 16 + fields_len {
            i = align(i, 8);
            let code = m[i];
            let sig = m[i + 2];
            i += 4; // code, signature length 1, type, NUL
            match sig {
                b's' | b'o' => {
                    i = align(i, 4);
                    let n = u32_at(&m, i) as usize;
                    if code == 3 {
                        member = String::from_utf8_lossy(&m[i + 4..i + 4 + n]).into_owned();
                    }
                    i += 4 + n + 1;
                }
                b'g' => i += m[i] as usize + 2,
                b'u' => i = align(i, 4) + 4,
                other => panic!("unexpected header field type {other}"),
            }
        }
        Some(Msg {
            serial: u32_at(&head, 8),
            member,
            body: m[body_at..].to_vec(),
            body_at,
        })
    }

    /// The pid in StartTransientUnit's `PIDs` property (a variant `au` of one element after the name).
    fn pids_of(m: &Msg) -> Option<u32> {
        let at = m.body.windows(5).position(|w| w == b"PIDs\0")? + 5;
        // variant signature "au": length byte 2, 'a', 'u', NUL; then the array length and the first element,
        // 4-aligned in the message
        let after_sig = at + 4;
        let arr = align(m.body_at + after_sig, 4) - m.body_at;
        Some(u32_at(&m.body, arr + 4))
    }

    fn put_str(b: &mut Vec<u8>, s: &str) {
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    }

    /// A message of `kind` (2 return, 3 error, 4 signal) whose body is strings (s/o) and u32s as `sig` says.
    fn encode(
        kind: u8,
        serial: u32,
        fields: &[(u8, u8, &str)],
        sig: &str,
        args: &[&str],
    ) -> Vec<u8> {
        let mut f = Vec::new();
        let field = |f: &mut Vec<u8>, code: u8, t: u8, v: &str| {
            while !f.len().is_multiple_of(8) {
                f.push(0);
            }
            f.extend_from_slice(&[code, 1, t, 0]);
            match t {
                b'g' => {
                    f.push(v.len() as u8);
                    f.extend_from_slice(v.as_bytes());
                    f.push(0);
                }
                b'u' => {
                    while !f.len().is_multiple_of(4) {
                        f.push(0);
                    }
                    f.extend_from_slice(&v.parse::<u32>().unwrap().to_le_bytes());
                }
                _ => put_str(f, v),
            }
        };
        for (code, t, v) in fields {
            field(&mut f, *code, *t, v);
        }
        if !sig.is_empty() {
            field(&mut f, 8, b'g', sig);
        }
        // body offsets: the header is 16 bytes + fields, padded to 8, so the body starts 8-aligned
        let mut body = Vec::new();
        for (t, a) in sig.bytes().zip(args) {
            match t {
                b'u' => {
                    while !body.len().is_multiple_of(4) {
                        body.push(0);
                    }
                    body.extend_from_slice(&a.parse::<u32>().unwrap().to_le_bytes());
                }
                b'v' => {
                    // a variant holding a string
                    body.extend_from_slice(&[1, b's', 0]);
                    put_str(&mut body, a);
                }
                _ => put_str(&mut body, a),
            }
        }
        let mut m = vec![b'l', kind, 0, 1];
        m.extend_from_slice(&(body.len() as u32).to_le_bytes());
        m.extend_from_slice(&serial.to_le_bytes());
        m.extend_from_slice(&(f.len() as u32).to_le_bytes());
        m.extend_from_slice(&f);
        while !m.len().is_multiple_of(8) {
            m.push(0);
        }
        m.extend_from_slice(&body);
        m
    }

    /// Serves one connection at `dir/bus` in a thread; every method call is reported on the channel.
    pub fn serve(dir: &std::path::Path, job: Job) -> (PathBuf, mpsc::Receiver<Call>) {
        let path = dir.join("bus");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                let tx = tx.clone();
                std::thread::spawn(move || talk(&mut s, job, &tx));
            }
        });
        (path, rx)
    }

    fn talk(s: &mut UnixStream, job: Job, tx: &mpsc::Sender<Call>) {
        // SASL: "\0AUTH EXTERNAL <hex uid>\r\n" ... "BEGIN\r\n"
        let mut line = Vec::new();
        let mut b = [0u8];
        while !line.ends_with(b"\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                return;
            }
            line.push(b[0]);
        }
        s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
            .unwrap();
        line.clear();
        while !line.ends_with(b"BEGIN\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                return;
            }
            line.push(b[0]);
        }
        let mut serial = 100;
        let mut next = || {
            serial += 1;
            serial
        };
        const SD: &str = "org.freedesktop.systemd1";
        let no_unit = "org.freedesktop.systemd1.NoSuchUnit";
        while let Some(m) = read_msg(s) {
            let _ = tx.send(Call {
                member: m.member.clone(),
                pid: (m.member == "StartTransientUnit")
                    .then(|| pids_of(&m))
                    .flatten(),
            });
            let reply = |sig: &str, args: &[&str], n: u32| {
                encode(
                    2,
                    n,
                    &[(5, b'u', &m.serial.to_string()), (7, b's', SD)],
                    sig,
                    args,
                )
            };
            let error = |name: &str, n: u32| {
                encode(
                    3,
                    n,
                    &[
                        (4, b's', name),
                        (5, b'u', &m.serial.to_string()),
                        (7, b's', SD),
                    ],
                    "s",
                    &[&format!("fake systemd: {name}")],
                )
            };
            let job_path = "/org/freedesktop/systemd1/job/7";
            let out = match m.member.as_str() {
                "Hello" => reply("s", &[":1.42"], next()),
                "AddMatch" => reply("", &[], next()),
                "StartTransientUnit" => {
                    let mut out = reply("o", &[job_path], next());
                    if let Job::Fails = job {
                        out.extend(encode(
                            4,
                            next(),
                            &[
                                (1, b'o', "/org/freedesktop/systemd1"),
                                (2, b's', "org.freedesktop.systemd1.Manager"),
                                (3, b's', "JobRemoved"),
                                (7, b's', SD),
                            ],
                            "uoss",
                            &["7", job_path, "the-unit", "failed"],
                        ));
                    }
                    out
                }
                "GetUnit" if matches!(job, Job::Fails) => {
                    reply("o", &["/org/freedesktop/systemd1/unit/x"], next())
                }
                "Get" => reply("v", &["resources"], next()),
                "ResetFailedUnit" if matches!(job, Job::Fails) => reply("", &[], next()),
                "StopUnit" | "GetUnit" | "ResetFailedUnit" => error(no_unit, next()),
                _ => error("org.freedesktop.DBus.Error.UnknownMethod", next()),
            };
            if s.write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// `berth --systemd-cgroup create` in a private mount namespace whose system bus socket is the fake's.
fn create_on_fake_bus(
    berth: &Berth,
    b: &Bundle,
    id: &str,
    bus: &std::path::Path,
) -> std::process::Output {
    let script = r#"mount -t tmpfs berth-fake-run /run && mkdir /run/dbus && ln -s "$0" /run/dbus/system_bus_socket && exec "$@""#;
    let mut c = std::process::Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(bus)
        .arg(BERTH)
        .arg("--root")
        .arg(&berth.root)
        .args(["--systemd-cgroup", "create", "--bundle"])
        .arg(&b.dir)
        .arg(id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    bounded(c, "berth create on the fake bus")
}

fn assert_nothing_left(berth: &Berth, id: &str, calls: &[fake_bus::Call]) {
    assert!(!berth.root.join(id).exists(), "{id}: state dir left behind");
    let pid = calls
        .iter()
        .find(|c| c.member == "StartTransientUnit")
        .expect("berth asked for the unit")
        .pid
        .expect("with the init's pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true),
        "{id}: the init (pid {pid}) is still alive"
    );
    for d in own_cgroup_dirs() {
        let p = d.join("system.slice");
        if let Ok(entries) = std::fs::read_dir(&p) {
            assert!(
                !entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(id)),
                "{id}: cgroup left in {}",
                p.display()
            );
        }
    }
}

/// systemd answers StartTransientUnit with a job and never finishes it: berth gives up after its bound (30 s,
/// runc's), naming the unit and the bound, stops the unit, kills the init and leaves nothing behind.
#[test]
fn job_that_never_finishes_times_out() {
    let berth = Berth::new();
    let id = unique("sdhang");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}")));
    let (bus, calls) = fake_bus::serve(&b.dir, fake_bus::Job::Hangs);
    let t0 = std::time::Instant::now();
    let out = create_on_fake_bus(&berth, &b, &id, &bus);
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("berth after {took:?}: {err}");
    assert_eq!(out.status.code(), Some(1), "create must fail: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    for want in [id.as_str(), &format!("berth-{id}.scope"), "30s"] {
        assert!(err.contains(want), "error should mention {want:?}: {err}");
    }
    assert!(
        took >= std::time::Duration::from_secs(29) && took < std::time::Duration::from_secs(60),
        "berth gave up after {took:?}, not after its 30 s bound"
    );
    let calls: Vec<_> = calls.try_iter().collect();
    assert!(
        calls.iter().any(|c| c.member == "StopUnit"),
        "the unit was not stopped after the timeout"
    );
    assert_nothing_left(&berth, &id, &calls);
}

/// The job ends with "failed": the error carries systemd's reason (the job result and the unit's Result).
#[test]
fn job_that_fails_carries_systemds_reason() {
    let berth = Berth::new();
    let id = unique("sdfail");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}")));
    let (bus, calls) = fake_bus::serve(&b.dir, fake_bus::Job::Fails);
    let out = create_on_fake_bus(&berth, &b, &id, &bus);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("berth: {err}");
    assert_eq!(out.status.code(), Some(1), "create must fail: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    for want in [
        id.as_str(),
        &format!("berth-{id}.scope"),
        "failed",
        "unit result resources",
    ] {
        assert!(err.contains(want), "error should mention {want:?}: {err}");
    }
    assert_nothing_left(&berth, &id, &calls.try_iter().collect::<Vec<_>>());
}
