//! A small blocking D-Bus client: just what the systemd driver needs (method calls to systemd's manager object and
//! its JobRemoved signal) over a unix socket with EXTERNAL authentication.
//!
//! Own code rather than zbus: zbus brings an async executor and its dependency tree (berth has no async runtime
//! and promises a static binary under 4 MiB); the wire format for the handful of calls used here is a few hundred
//! lines. Little-endian messages only are sent; replies of either byte order are read.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A D-Bus value (the subset of types systemd's manager API uses, and their containers).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    ObjPath(String),
    Sig(String),
    /// Element signature and elements (the signature makes empty arrays typeable).
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
    /// A dict entry `{kv}`, only inside arrays.
    Entry(Box<Value>, Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::ObjPath(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
            Value::Entry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjPath(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed D-Bus message: {0}")]
    Malformed(&'static str),
    #[error("D-Bus authentication refused: {0}")]
    Auth(String),
    /// An error reply: its name and message, e.g. org.freedesktop.systemd1.UnitExists.
    #[error("{name}: {message}")]
    Reply { name: String, message: String },
    #[error("no reply from systemd within {0:?}")]
    Timeout(Duration),
}

pub type Result<T> = std::result::Result<T, Error>;

// ------------------------------------------------------------------------------------------ marshalling ------

fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    while !buf.len().is_multiple_of(align) {
        buf.push(0);
    }
}

/// Appends `v` to `buf` (whose offset 0 is 8-aligned in the message).
pub fn marshal(buf: &mut Vec<u8>, v: &Value) {
    let sig = v.signature();
    pad_to(buf, align_of(sig.as_bytes()[0]));
    match v {
        Value::Byte(b) => buf.push(*b),
        Value::Bool(b) => buf.extend_from_slice(&u32::from(*b).to_le_bytes()),
        Value::I16(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U16(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::I32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::I64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::Double(d) => buf.extend_from_slice(&d.to_le_bytes()),
        Value::Str(s) | Value::ObjPath(s) => {
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Sig(s) => {
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Array(elem, items) => {
            let len_at = buf.len();
            buf.extend_from_slice(&0u32.to_le_bytes());
            pad_to(buf, align_of(elem.as_bytes()[0]));
            let start = buf.len();
            for item in items {
                marshal(buf, item);
            }
            let len = (buf.len() - start) as u32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Value::Struct(fields) => {
            for f in fields {
                marshal(buf, f);
            }
        }
        Value::Variant(inner) => {
            marshal(buf, &Value::Sig(inner.signature()));
            marshal(buf, inner);
        }
        Value::Entry(k, val) => {
            marshal(buf, k);
            marshal(buf, val);
        }
    }
}

/// Reads values of a signature from a message body.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
    depth: u32,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], big_endian: bool) -> Self {
        Reader {
            data,
            pos: 0,
            big_endian,
            depth: 0,
        }
    }

    fn align(&mut self, a: usize) -> Result<()> {
        let to = self.pos.div_ceil(a) * a;
        if to > self.data.len() {
            return Err(Error::Malformed("padding runs past the end"));
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or(Error::Malformed("value runs past the end"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self) -> Result<u64> {
        self.align(8)?;
        let b: [u8; 8] = self.take(8)?.try_into().expect("8 bytes");
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    fn string(&mut self, len: usize) -> Result<String> {
        let s = self.take(len)?.to_vec();
        if self.take(1)? != [0] {
            return Err(Error::Malformed("string without its NUL"));
        }
        String::from_utf8(s).map_err(|_| Error::Malformed("string is not UTF-8"))
    }

    /// Reads every value of `sig` (a sequence of complete types).
    pub fn read_all(&mut self, sig: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut rest = sig;
        while !rest.is_empty() {
            let (one, tail) = split_type(rest)?;
            out.push(self.read(one)?);
            rest = tail;
        }
        Ok(out)
    }

    /// Reads one value of the single complete type `sig`.
    pub fn read(&mut self, sig: &str) -> Result<Value> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(Error::Malformed("nested too deeply"));
        }
        let v = self.read_inner(sig);
        self.depth -= 1;
        v
    }

    fn read_inner(&mut self, sig: &str) -> Result<Value> {
        let c = *sig
            .as_bytes()
            .first()
            .ok_or(Error::Malformed("empty type"))?;
        Ok(match c {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' | b'q' => {
                self.align(2)?;
                let b: [u8; 2] = self.take(2)?.try_into().expect("2 bytes");
                let v = if self.big_endian {
                    u16::from_be_bytes(b)
                } else {
                    u16::from_le_bytes(b)
                };
                if c == b'n' {
                    Value::I16(v as i16)
                } else {
                    Value::U16(v)
                }
            }
            b'i' => Value::I32(self.u32()? as i32),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(self.u64()? as i64),
            b't' => Value::U64(self.u64()?),
            b'd' => Value::Double(f64::from_bits(self.u64()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.string(len)?;
                if c == b's' {
                    Value::Str(s)
                } else {
                    Value::ObjPath(s)
                }
            }
            b'g' => {
                let len = usize::from(self.take(1)?[0]);
                Value::Sig(self.string(len)?)
            }
            b'v' => {
                let len = usize::from(self.take(1)?[0]);
                let inner_sig = self.string(len)?;
                let (one, tail) = split_type(&inner_sig)?;
                if !tail.is_empty() {
                    return Err(Error::Malformed("variant holds more than one type"));
                }
                Value::Variant(Box::new(self.read(one)?))
            }
            b'a' => {
                let elem = &sig[1..];
                let len = self.u32()? as usize;
                self.align(align_of(
                    *elem
                        .as_bytes()
                        .first()
                        .ok_or(Error::Malformed("array without type"))?,
                ))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.data.len())
                    .ok_or(Error::Malformed("array runs past the end"))?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.read(elem)?);
                }
                if self.pos != end {
                    return Err(Error::Malformed("array length does not match its elements"));
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' => {
                self.align(8)?;
                let inner = &sig[1..sig.len() - 1];
                Value::Struct(self.read_all(inner)?)
            }
            b'{' => {
                self.align(8)?;
                let inner = &sig[1..sig.len() - 1];
                let mut kv = self.read_all(inner)?;
                if kv.len() != 2 {
                    return Err(Error::Malformed("dict entry is not a pair"));
                }
                let v = kv.pop().expect("two");
                let k = kv.pop().expect("two");
                Value::Entry(Box::new(k), Box::new(v))
            }
            _ => return Err(Error::Malformed("unknown type code")),
        })
    }
}

/// Splits the first complete type off a signature.
pub fn split_type(sig: &str) -> Result<(&str, &str)> {
    let b = sig.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'a' {
        i += 1;
    }
    if i >= b.len() {
        return Err(Error::Malformed("signature ends inside an array type"));
    }
    let end = match b[i] {
        open @ (b'(' | b'{') => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut depth = 0usize;
            let mut j = i;
            loop {
                if j >= b.len() {
                    return Err(Error::Malformed("unbalanced signature"));
                }
                if b[j] == b'(' || b[j] == b'{' {
                    depth += 1;
                } else if b[j] == b')' || b[j] == b'}' {
                    depth -= 1;
                    if depth == 0 {
                        if b[j] != close {
                            return Err(Error::Malformed("unbalanced signature"));
                        }
                        break;
                    }
                }
                j += 1;
            }
            j + 1
        }
        _ => i + 1,
    };
    Ok((&sig[..end], &sig[end..]))
}

// ------------------------------------------------------------------------------------------ messages ---------

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A message as read from or written to the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    pub fn call(dest: &str, path: &str, iface: &str, member: &str, body: Vec<Value>) -> Self {
        Message {
            kind: METHOD_CALL,
            destination: Some(dest.into()),
            path: Some(path.into()),
            interface: Some(iface.into()),
            member: Some(member.into()),
            body,
            ..Default::default()
        }
    }

    /// The wire form (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for v in &self.body {
            marshal(&mut body, v);
        }
        let sig: String = self.body.iter().map(Value::signature).collect();
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| {
            fields.push(Value::Struct(vec![
                Value::Byte(code),
                Value::Variant(Box::new(v)),
            ]))
        };
        if let Some(p) = &self.path {
            field(1, Value::ObjPath(p.clone()));
        }
        if let Some(i) = &self.interface {
            field(2, Value::Str(i.clone()));
        }
        if let Some(m) = &self.member {
            field(3, Value::Str(m.clone()));
        }
        if let Some(e) = &self.error_name {
            field(4, Value::Str(e.clone()));
        }
        if let Some(r) = self.reply_serial {
            field(5, Value::U32(r));
        }
        if let Some(d) = &self.destination {
            field(6, Value::Str(d.clone()));
        }
        if let Some(s) = &self.sender {
            field(7, Value::Str(s.clone()));
        }
        if !sig.is_empty() {
            field(8, Value::Sig(sig));
        }
        let mut msg = vec![b'l', self.kind, 0, 1];
        msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
        msg.extend_from_slice(&self.serial.to_le_bytes());
        marshal(&mut msg, &Value::Array("(yv)".into(), fields));
        pad_to(&mut msg, 8);
        msg.extend_from_slice(&body);
        msg
    }

    /// How many bytes the message starting with these 16 bytes takes in all.
    pub fn total_len(head: &[u8; 16]) -> Result<usize> {
        let big = match head[0] {
            b'l' => false,
            b'B' => true,
            _ => return Err(Error::Malformed("bad byte-order mark")),
        };
        let rd = |b: [u8; 4]| {
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let body = rd(head[4..8].try_into().expect("4")) as usize;
        let fields = rd(head[12..16].try_into().expect("4")) as usize;
        let total = (16 + fields).div_ceil(8) * 8 + body;
        if total > 128 << 20 {
            return Err(Error::Malformed("message larger than 128 MiB"));
        }
        Ok(total)
    }

    pub fn decode(data: &[u8]) -> Result<Message> {
        if data.len() < 16 {
            return Err(Error::Malformed("shorter than a header"));
        }
        let big = match data[0] {
            b'l' => false,
            b'B' => true,
            _ => return Err(Error::Malformed("bad byte-order mark")),
        };
        let mut r = Reader::new(data, big);
        r.pos = 4;
        let body_len = r.u32()? as usize;
        let serial = r.u32()?;
        let mut m = Message {
            kind: data[1],
            serial,
            ..Default::default()
        };
        let mut sig = String::new();
        if let Value::Array(_, fields) = r.read("a(yv)")? {
            for f in fields {
                let Value::Struct(mut kv) = f else { continue };
                let (Some(Value::Variant(v)), Some(Value::Byte(code))) = (kv.pop(), kv.pop())
                else {
                    continue;
                };
                let s = v.as_str().map(str::to_string);
                match code {
                    1 => m.path = s,
                    2 => m.interface = s,
                    3 => m.member = s,
                    4 => m.error_name = s,
                    5 => m.reply_serial = v.as_u32(),
                    6 => m.destination = s,
                    7 => m.sender = s,
                    8 => sig = s.unwrap_or_default(),
                    _ => {}
                }
            }
        }
        r.align(8)?;
        let start = r.pos;
        if data.len() - start != body_len {
            return Err(Error::Malformed("body length does not match"));
        }
        let mut body = Reader::new(&data[start..], big);
        m.body = body.read_all(&sig)?;
        Ok(m)
    }
}

// ------------------------------------------------------------------------------------------ connection -------

/// The system bus, then systemd's private socket (as runc falls back to it when the bus is down).
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";

/// The sockets to try, in order, with whether each is a bus daemon's (else systemd's own private socket).
///
/// root (`euid` 0) talks to the system manager: the system bus, then systemd's private socket (runc's fallback
/// when the bus is down). Anyone else can only ask their own user manager (runc's rootless `--systemd-cgroup`):
/// the session bus of `DBUS_SESSION_BUS_ADDRESS` (its `unix:path=` entries), else `$XDG_RUNTIME_DIR/bus`, then the
/// user manager's private socket `$XDG_RUNTIME_DIR/systemd/private`; `XDG_RUNTIME_DIR` defaults to
/// `/run/user/<uid>`. `env` reads the environment (a parameter for the tests).
pub fn sockets_for(euid: u32, env: impl Fn(&str) -> Option<String>) -> Vec<(PathBuf, bool)> {
    if euid == 0 {
        return vec![
            (PathBuf::from(SYSTEM_BUS), true),
            (PathBuf::from(SYSTEMD_PRIVATE), false),
        ];
    }
    let runtime = env("XDG_RUNTIME_DIR")
        .filter(|d| d.starts_with('/'))
        .unwrap_or_else(|| format!("/run/user/{euid}"));
    let runtime = Path::new(&runtime);
    let mut out: Vec<(PathBuf, bool)> = env("DBUS_SESSION_BUS_ADDRESS")
        .map(|a| unix_paths(&a))
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p, true))
        .collect();
    if out.is_empty() {
        out.push((runtime.join("bus"), true));
    }
    out.push((runtime.join("systemd/private"), false));
    out
}

/// The socket paths of a D-Bus address list (`unix:path=/run/user/1000/bus;...`, values %-escaped); other
/// transports (abstract sockets, tcp) are left out.
pub fn unix_paths(address: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in address.split(';') {
        let Some(params) = entry.strip_prefix("unix:") else {
            continue;
        };
        for kv in params.split(',') {
            if let Some(v) = kv.strip_prefix("path=") {
                if let Some(p) = unescape(v).filter(|p| p.starts_with('/')) {
                    out.push(PathBuf::from(p));
                }
            }
        }
    }
    out
}

/// D-Bus address value unescaping: `%XX` is the byte XX.
fn unescape(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub struct Connection {
    stream: UnixStream,
    serial: u32,
    /// Connected to a bus daemon (else straight to systemd: no Hello, no AddMatch, no destination needed).
    via_bus: bool,
    /// Messages read while waiting for something else (signals that came before a reply).
    pending: Vec<Message>,
}

/// Which sockets were tried and why each failed, for the one error line.
#[derive(Debug)]
pub struct ConnectError {
    pub tried: Vec<(PathBuf, String)>,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach systemd over D-Bus:")?;
        for (i, (p, e)) in self.tried.iter().enumerate() {
            write!(f, "{} {}: {e}", if i == 0 { "" } else { ";" }, p.display())?;
        }
        Ok(())
    }
}

impl Connection {
    /// Connects to the first of `sockets` that answers (the bus daemon's socket first), authenticating as `uid`.
    pub fn connect_any(
        sockets: &[(PathBuf, bool)],
        uid: u32,
    ) -> std::result::Result<Connection, ConnectError> {
        let mut tried = Vec::new();
        for (path, via_bus) in sockets {
            match Connection::open(path, *via_bus, uid) {
                Ok(c) => return Ok(c),
                Err(e) => tried.push((path.clone(), e.to_string())),
            }
        }
        Err(ConnectError { tried })
    }

    /// `uid` is the one EXTERNAL authentication claims: the peer checks it against the socket's credentials,
    /// which the kernel gives in the initial user namespace (so uid 0 of a user namespace sends its host uid).
    pub fn open(path: &Path, via_bus: bool, uid: u32) -> Result<Connection> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut c = Connection {
            stream,
            serial: 0,
            via_bus,
            pending: Vec::new(),
        };
        c.authenticate(uid)?;
        if via_bus {
            c.call_bus("Hello", vec![])?;
        } else {
            c.settle()?;
        }
        Ok(c)
    }

    /// On a direct connection, pings systemd until it answers. sd-bus (seen with systemd 252's user manager) can
    /// leave a message that arrived in the same read as `BEGIN` unread until more bytes come; a ping that is not
    /// answered soon is followed by another, whose bytes wake it. After this, one call is in flight at a time.
    fn settle(&mut self) -> Result<()> {
        let step = Duration::from_millis(500);
        for _ in 0..20 {
            let ping = Message::call(
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.DBus.Peer",
                "Ping",
                vec![],
            );
            match self.call(ping, step) {
                Ok(_) | Err(Error::Reply { .. }) => return Ok(()),
                Err(Error::Timeout(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Timeout(step * 20))
    }

    fn authenticate(&mut self, uid: u32) -> Result<()> {
        let uid = uid.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.stream
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = self.read_line()?;
        if !line.starts_with("OK ") {
            return Err(Error::Auth(line));
        }
        self.stream.write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if self.stream.read(&mut b)? == 0 {
                return Err(Error::Auth("the peer closed the connection".into()));
            }
            line.push(b[0]);
            if line.len() > 4096 {
                return Err(Error::Auth("overlong reply".into()));
            }
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn send(&mut self, mut m: Message) -> Result<u32> {
        self.serial += 1;
        m.serial = self.serial;
        if !self.via_bus {
            m.destination = None;
        }
        self.stream.write_all(&m.encode())?;
        Ok(m.serial)
    }

    fn receive(&mut self, deadline: Instant, limit: Duration) -> Result<Message> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(limit));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut head = [0u8; 16];
        self.read_exact(&mut head, limit)?;
        let total = Message::total_len(&head)?;
        let mut data = head.to_vec();
        data.resize(total, 0);
        self.read_exact(&mut data[16..], limit)?;
        Message::decode(&data)
    }

    fn read_exact(&mut self, buf: &mut [u8], limit: Duration) -> Result<()> {
        self.stream.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout(limit),
            _ => Error::Io(e),
        })
    }

    /// Calls a method and waits (at most `limit`) for its reply; signals read meanwhile are kept for
    /// [`Connection::wait_signal`].
    pub fn call(&mut self, m: Message, limit: Duration) -> Result<Vec<Value>> {
        let serial = self.send(m)?;
        let deadline = Instant::now() + limit;
        loop {
            let r = self.receive(deadline, limit)?;
            if r.reply_serial == Some(serial) && (r.kind == METHOD_RETURN || r.kind == ERROR) {
                if r.kind == ERROR {
                    let message = r
                        .body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    return Err(Error::Reply {
                        name: r.error_name.unwrap_or_default(),
                        message,
                    });
                }
                return Ok(r.body);
            }
            if r.kind == SIGNAL {
                self.pending.push(r);
            }
        }
    }

    fn call_bus(&mut self, member: &str, body: Vec<Value>) -> Result<Vec<Value>> {
        let m = Message::call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            member,
            body,
        );
        self.call(m, Duration::from_secs(10))
    }

    /// Asks the bus for the signals matching `rule` (no-op on a direct connection: systemd sends them all).
    pub fn add_match(&mut self, rule: &str) -> Result<()> {
        if self.via_bus {
            self.call_bus("AddMatch", vec![Value::Str(rule.into())])?;
        }
        Ok(())
    }

    /// Waits (at most `limit`) for a signal for which `pick` returns something.
    pub fn wait_signal<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&Message) -> Option<T>,
    ) -> Result<T> {
        if let Some(i) = self.pending.iter().position(|m| pick(m).is_some()) {
            let m = self.pending.remove(i);
            return Ok(pick(&m).expect("just matched"));
        }
        let deadline = Instant::now() + limit;
        loop {
            let m = self.receive(deadline, limit)?;
            if m.kind == SIGNAL {
                if let Some(t) = pick(&m) {
                    return Ok(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let mut buf = Vec::new();
        marshal(&mut buf, &v);
        let sig = v.signature();
        let got = Reader::new(&buf, false).read(&sig).unwrap();
        assert_eq!(got, v, "signature {sig}");
    }

    #[test]
    fn values_round_trip() {
        roundtrip(Value::Str("system.slice".into()));
        roundtrip(Value::U64(u64::MAX));
        roundtrip(Value::Bool(true));
        roundtrip(Value::Struct(vec![
            Value::Byte(1),
            Value::I16(-2),
            Value::U16(3),
            Value::Double(-0.25),
        ]));
        roundtrip(Value::Array(
            "u".into(),
            vec![Value::U32(1), Value::U32(42)],
        ));
        roundtrip(Value::Array("y".into(), vec![Value::Byte(0b101)]));
        roundtrip(Value::Array("(sv)".into(), vec![]));
        roundtrip(Value::Struct(vec![
            Value::Str("MemoryMax".into()),
            Value::Variant(Box::new(Value::U64(1 << 30))),
        ]));
        roundtrip(Value::Array(
            "(ss)".into(),
            vec![Value::Struct(vec![
                Value::Str("/dev/null".into()),
                Value::Str("rwm".into()),
            ])],
        ));
        roundtrip(Value::Array(
            "{sv}".into(),
            vec![Value::Entry(
                Box::new(Value::Str("k".into())),
                Box::new(Value::Variant(Box::new(Value::Byte(7)))),
            )],
        ));
    }

    /// The exact bytes of an empty array of 8-aligned structs: the length excludes the padding before the
    /// first (absent) element, which is still written.
    #[test]
    fn empty_struct_array_is_padded() {
        let mut buf = vec![0u8];
        marshal(&mut buf, &Value::Array("(sv)".into(), vec![]));
        assert_eq!(buf, vec![0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn start_transient_unit_call_round_trips() {
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::Str("Slice".into()),
                    Value::Variant(Box::new(Value::Str("system.slice".into()))),
                ]),
                Value::Struct(vec![
                    Value::Str("PIDs".into()),
                    Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(77)]))),
                ]),
            ],
        );
        let aux = Value::Array("(sa(sv))".into(), vec![]);
        let mut m = Message::call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            vec![
                Value::Str("berth-x.scope".into()),
                Value::Str("replace".into()),
                props,
                aux,
            ],
        );
        m.serial = 9;
        let wire = m.encode();
        assert_eq!(&wire[..4], b"l\x01\x00\x01");
        let mut head = [0u8; 16];
        head.copy_from_slice(&wire[..16]);
        assert_eq!(Message::total_len(&head).unwrap(), wire.len());
        let back = Message::decode(&wire).unwrap();
        assert_eq!(back, m);
        let sig: String = back.body.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
    }

    /// A big-endian message (a peer may send either byte order) decodes.
    #[test]
    fn big_endian_signal_decodes() {
        // body "us": u32 5, string "ok"
        let mut body = 5u32.to_be_bytes().to_vec();
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(b"ok\0");
        let mut be = vec![b'B', SIGNAL, 0, 1];
        be.extend_from_slice(&(body.len() as u32).to_be_bytes());
        be.extend_from_slice(&3u32.to_be_bytes());
        // fields: one signature field (8, g "us") and one member field (3, s "JobRemoved")
        let mut fields = Vec::new();
        fields.extend_from_slice(&[8, 1, b'g', 0, 2, b'u', b's', 0]);
        fields.extend_from_slice(&[3, 1, b's', 0]);
        fields.extend_from_slice(&10u32.to_be_bytes());
        fields.extend_from_slice(b"JobRemoved\0");
        be.extend_from_slice(&(fields.len() as u32).to_be_bytes());
        be.extend_from_slice(&fields);
        while !be.len().is_multiple_of(8) {
            be.push(0);
        }
        be.extend_from_slice(&body);
        let m = Message::decode(&be).unwrap();
        assert_eq!(m.kind, SIGNAL);
        assert_eq!(m.member.as_deref(), Some("JobRemoved"));
        assert_eq!(m.body, vec![Value::U32(5), Value::Str("ok".into())]);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for sig in ["a", "(s", "{s}", "(yv))"] {
            let _ = Reader::new(&[1, 0, 0, 0, 9, 9], false).read_all(sig);
        }
        assert!(Reader::new(&[255, 255, 255, 255], false).read("s").is_err());
        assert!(Reader::new(&[8, 0, 0, 0, 1, 2], false).read("ay").is_err());
        assert!(Message::decode(b"x234567890123456").is_err());
    }

    #[test]
    fn root_asks_the_system_manager() {
        let env = |_: &str| Some("unix:path=/tmp/ignored".to_string());
        assert_eq!(
            sockets_for(0, env),
            vec![
                (PathBuf::from("/run/dbus/system_bus_socket"), true),
                (PathBuf::from("/run/systemd/private"), false)
            ]
        );
    }

    #[test]
    fn rootless_asks_the_user_manager() {
        let env_of = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        // nothing set: the user's runtime dir by uid
        assert_eq!(
            sockets_for(1000, env_of(&[])),
            vec![
                (PathBuf::from("/run/user/1000/bus"), true),
                (PathBuf::from("/run/user/1000/systemd/private"), false)
            ]
        );
        // XDG_RUNTIME_DIR
        assert_eq!(
            sockets_for(1000, env_of(&[("XDG_RUNTIME_DIR", "/xdg")])),
            vec![
                (PathBuf::from("/xdg/bus"), true),
                (PathBuf::from("/xdg/systemd/private"), false)
            ]
        );
        // a relative XDG_RUNTIME_DIR is ignored (as the XDG spec says)
        assert_eq!(
            sockets_for(7, env_of(&[("XDG_RUNTIME_DIR", "rel")]))[0].0,
            PathBuf::from("/run/user/7/bus")
        );
        // DBUS_SESSION_BUS_ADDRESS wins for the bus; the private socket stays the runtime dir's
        assert_eq!(
            sockets_for(
                1000,
                env_of(&[
                    ("XDG_RUNTIME_DIR", "/xdg"),
                    (
                        "DBUS_SESSION_BUS_ADDRESS",
                        "unix:abstract=/x;unix:path=/s%20b/bus,guid=ab"
                    )
                ])
            ),
            vec![
                (PathBuf::from("/s b/bus"), true),
                (PathBuf::from("/xdg/systemd/private"), false)
            ]
        );
        // an address with no unix path: the runtime dir's bus
        assert_eq!(
            sockets_for(
                1000,
                env_of(&[("DBUS_SESSION_BUS_ADDRESS", "tcp:host=x,port=1")])
            )[0]
            .0,
            PathBuf::from("/run/user/1000/bus")
        );
    }

    #[test]
    fn bus_address_unix_paths() {
        assert_eq!(
            unix_paths("unix:path=/run/user/1000/bus"),
            vec![PathBuf::from("/run/user/1000/bus")]
        );
        assert_eq!(
            unix_paths("unix:path=/a;unix:path=/b%3bc"),
            vec![PathBuf::from("/a"), PathBuf::from("/b;c")]
        );
        assert!(unix_paths("unix:path=/bad%zz").is_empty());
        assert!(unix_paths("unix:path=relative").is_empty());
        assert!(unix_paths("unixexec:path=/bin/x").is_empty());
    }

    #[test]
    fn split_type_splits_complete_types() {
        assert_eq!(
            split_type("ssa(sv)a(sa(sv))").unwrap(),
            ("s", "sa(sv)a(sa(sv))")
        );
        assert_eq!(split_type("a(sa(sv))").unwrap(), ("a(sa(sv))", ""));
        assert_eq!(split_type("a{sv}u").unwrap(), ("a{sv}", "u"));
        assert!(split_type("a").is_err());
        assert!(split_type("(s").is_err());
    }
}
