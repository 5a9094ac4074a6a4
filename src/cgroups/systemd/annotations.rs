//! runc's `org.systemd.property.<Name>` annotations: extra properties of the transient unit, the value in
//! GVariant text form (`uint64 123`, `'inactive-or-failed'`, `true`, `['a.service']`, `@as []`).
//!
//! As runc: the name must be at least three ASCII letters; a name ending in a lowercase letter + `Sec` (the
//! documented `TimeoutStopSec`) becomes `...USec` with its number of seconds turned into microseconds; the
//! properties go after berth's own, so that systemd (which applies them in order) lets them win. No name is
//! refused beyond that (runc refuses none either): the config's author owns the unit.
//!
//! The text parser takes the subset of GVariant text that systemd's property types need: the basic types with
//! or without a type keyword, `@T` annotations, arrays and tuples. Maybes, dictionaries and bytestrings are
//! refused with an error.

use std::collections::BTreeMap;

use super::dbus::{split_type, Value};
use super::props::Property;

const PREFIX: &str = "org.systemd.property.";

/// The properties the annotations ask for, in name order (a config's map has none of its own).
pub fn properties<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Property>, String> {
    let sorted: BTreeMap<&String, &String> = annotations.into_iter().collect();
    let mut out = Vec::new();
    for (key, text) in sorted {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "annotation {key} name incorrect: a systemd property name is at least 3 ASCII letters"
            ));
        }
        let bad = |why: String| format!("annotation {key}={text} value parse error: {why}");
        let mut value = parse(text).map_err(bad)?;
        let mut name = name.to_string();
        if let Some(stem) = name.strip_suffix("Sec") {
            if stem.ends_with(|c: char| c.is_ascii_lowercase()) {
                value = Value::U64(seconds_to_usec(&value).map_err(|e| bad(e.into()))?);
                name = format!("{stem}USec");
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

/// A number of seconds as microseconds (runc's conversion for `...Sec` names).
fn seconds_to_usec(v: &Value) -> Result<u64, &'static str> {
    const M: u64 = 1_000_000;
    let whole = |n: i64| {
        u64::try_from(n)
            .map_err(|_| "a negative time")?
            .checked_mul(M)
            .ok_or("the time overflows microseconds")
    };
    match *v {
        Value::Byte(n) => whole(i64::from(n)),
        Value::I16(n) => whole(i64::from(n)),
        Value::U16(n) => whole(i64::from(n)),
        Value::I32(n) => whole(i64::from(n)),
        Value::U32(n) => whole(i64::from(n)),
        Value::I64(n) => whole(n),
        Value::U64(n) => n.checked_mul(M).ok_or("the time overflows microseconds"),
        Value::Double(d) if d >= 0.0 && d * (M as f64) < u64::MAX as f64 => {
            Ok((d * M as f64) as u64)
        }
        Value::Double(_) => Err("the time is negative or overflows microseconds"),
        _ => Err("not a number"),
    }
}

/// Parses one GVariant text value.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value(None)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected {:?} at offset {}", p.rest(), p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: u32,
}

/// The type keywords of GVariant text and their D-Bus signatures.
const KEYWORDS: [(&str, &str); 12] = [
    ("boolean", "b"),
    ("byte", "y"),
    ("int16", "n"),
    ("uint16", "q"),
    ("int32", "i"),
    ("uint32", "u"),
    ("int64", "x"),
    ("uint64", "t"),
    ("double", "d"),
    ("string", "s"),
    ("objectpath", "o"),
    ("signature", "g"),
];

impl Parser<'_> {
    fn rest(&self) -> String {
        String::from_utf8_lossy(&self.s[self.i..])
            .chars()
            .take(20)
            .collect()
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// A bare word (type keyword, boolean, number).
    fn word(&mut self) -> &str {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.' | b'_'))
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).expect("ASCII")
    }

    /// One value; `want` is its signature when the context fixes it.
    fn value(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > 32 {
            return Err("nested too deeply".into());
        }
        let v = self.value_inner(want);
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self, want: Option<&str>) -> Result<Value, String> {
        match self.peek() {
            None => Err("a value is missing".into()),
            Some(b'@') => {
                self.i += 1;
                let start = self.i;
                while self.s.get(self.i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    self.i += 1;
                }
                let sig = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII run");
                check_sig(sig)?;
                self.typed(want, sig)
            }
            Some(b'[') => self.array(want),
            Some(b'(') => self.tuple(want),
            Some(b'\'' | b'"') => {
                let s = self.string()?;
                match want.unwrap_or("s") {
                    "s" => Ok(Value::Str(s)),
                    "o" if s.starts_with('/') => Ok(Value::ObjPath(s)),
                    "g" => Ok(Value::Sig(s)),
                    w => Err(format!("a string where a value of type {w} was expected")),
                }
            }
            Some(_) => {
                let save = self.i;
                let w = self.word().to_string();
                if let Some((_, sig)) = KEYWORDS.iter().find(|(k, _)| *k == w) {
                    return self.typed(want, sig);
                }
                self.i = save;
                self.scalar(want)
            }
        }
    }

    /// A value after a type keyword or `@T`: the type must agree with the context's.
    fn typed(&mut self, want: Option<&str>, sig: &str) -> Result<Value, String> {
        if let Some(w) = want.filter(|w| *w != sig) {
            return Err(format!("a value of type {sig} where {w} was expected"));
        }
        self.value(Some(sig))
    }

    fn array(&mut self, want: Option<&str>) -> Result<Value, String> {
        let mut elem = match want {
            Some(w) => Some(
                w.strip_prefix('a')
                    .ok_or_else(|| format!("an array where a value of type {w} was expected"))?
                    .to_string(),
            ),
            None => None,
        };
        self.i += 1; // [
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return match elem {
                Some(e) => Ok(Value::Array(e, items)),
                None => Err("the type of an empty array must be given (e.g. @as [])".into()),
            };
        }
        loop {
            let v = self.value(elem.as_deref())?;
            if elem.is_none() {
                elem = Some(v.signature());
            }
            items.push(v);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(format!("expected ',' or ']' at {:?}", self.rest())),
            }
        }
        Ok(Value::Array(elem.expect("one element read"), items))
    }

    fn tuple(&mut self, want: Option<&str>) -> Result<Value, String> {
        let mut types: Option<Vec<&str>> = match want {
            Some(w) => {
                let inner = w
                    .strip_prefix('(')
                    .and_then(|w| w.strip_suffix(')'))
                    .ok_or_else(|| format!("a tuple where a value of type {w} was expected"))?;
                let mut list = Vec::new();
                let mut rest = inner;
                while !rest.is_empty() {
                    let (one, tail) = split_type(rest).map_err(|e| e.to_string())?;
                    list.push(one);
                    rest = tail;
                }
                list.reverse();
                Some(list)
            }
            None => None,
        };
        self.i += 1; // (
        let mut fields = Vec::new();
        if self.peek() == Some(b')') {
            self.i += 1;
            return Err("an empty tuple has no D-Bus type".into());
        }
        loop {
            let t = match &mut types {
                Some(list) => Some(
                    list.pop()
                        .ok_or("the tuple has more fields than its type")?,
                ),
                None => None,
            };
            fields.push(self.value(t)?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(format!("expected ',' or ')' at {:?}", self.rest())),
            }
        }
        if types.is_some_and(|l| !l.is_empty()) {
            return Err("the tuple has fewer fields than its type".into());
        }
        Ok(Value::Struct(fields))
    }

    /// A quoted string ('...' or "...") with GVariant's escapes.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self
                .s
                .get(self.i)
                .ok_or("a string without its closing quote")?;
            self.i += 1;
            match c {
                c if c == quote => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("a string ending in '\\'")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'u' | b'U' => {
                            let n = if e == b'u' { 4 } else { 8 };
                            let hex = self
                                .s
                                .get(self.i..self.i + n)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32)
                                .ok_or("a bad \\u escape")?;
                            self.i += n;
                            out.extend_from_slice(hex.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "a string that is not UTF-8".into())
    }

    /// A boolean or a number, of the type `want` (else: true/false, int32, or double with '.' or an exponent).
    fn scalar(&mut self, want: Option<&str>) -> Result<Value, String> {
        let w = self.word().to_string();
        if w.is_empty() {
            return Err(format!("unexpected {:?}", self.rest()));
        }
        if w == "true" || w == "false" {
            return match want.unwrap_or("b") {
                "b" => Ok(Value::Bool(w == "true")),
                t => Err(format!("a boolean where a value of type {t} was expected")),
            };
        }
        let hex = w.trim_start_matches(['-', '+']).starts_with("0x");
        let float = !hex && w.contains(['.', 'e', 'E']);
        let want = want.unwrap_or(if float { "d" } else { "i" });
        if want == "d" {
            return w
                .parse::<f64>()
                .map(Value::Double)
                .map_err(|_| format!("{w:?} is not a number"));
        }
        let n = parse_int(&w).ok_or_else(|| format!("{w:?} is not an integer"))?;
        let range = || format!("{w} is out of range for type {want}");
        Ok(match want {
            "y" => Value::Byte(u8::try_from(n).map_err(|_| range())?),
            "n" => Value::I16(i16::try_from(n).map_err(|_| range())?),
            "q" => Value::U16(u16::try_from(n).map_err(|_| range())?),
            "i" => Value::I32(i32::try_from(n).map_err(|_| range())?),
            "u" => Value::U32(u32::try_from(n).map_err(|_| range())?),
            "x" => Value::I64(i64::try_from(n).map_err(|_| range())?),
            "t" => Value::U64(u64::try_from(n).map_err(|_| range())?),
            t => return Err(format!("a number where a value of type {t} was expected")),
        })
    }
}

/// Decimal, 0x hex or leading-0 octal, optionally signed, as GVariant reads integers.
fn parse_int(w: &str) -> Option<i128> {
    let (neg, digits) = match w.as_bytes().first()? {
        b'-' => (true, &w[1..]),
        b'+' => (false, &w[1..]),
        _ => (false, w),
    };
    let n = if let Some(h) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<i128>().ok()?
    };
    if digits.starts_with(['-', '+']) {
        return None;
    }
    Some(if neg { -n } else { n })
}

/// A signature of one complete type made only of what the parser can build.
fn check_sig(sig: &str) -> Result<(), String> {
    let unsupported =
        || format!("the type {sig:?} is not supported (basic types, arrays and tuples are)");
    if sig.is_empty() || sig.bytes().any(|c| !b"ybnqiuxtdsoga()".contains(&c)) {
        return Err(unsupported());
    }
    match split_type(sig) {
        Ok((_, "")) => Ok(()),
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn props(list: &[(&str, &str)]) -> Result<Vec<Property>, String> {
        let map: HashMap<String, String> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        properties(&map)
    }

    #[test]
    fn gvariant_scalars() {
        assert_eq!(parse("uint64 123"), Ok(Value::U64(123)));
        assert_eq!(parse("  uint32 0x10 "), Ok(Value::U32(16)));
        assert_eq!(parse("int64 -5"), Ok(Value::I64(-5)));
        assert_eq!(parse("byte 255"), Ok(Value::Byte(255)));
        assert_eq!(parse("int16 -2"), Ok(Value::I16(-2)));
        assert_eq!(parse("uint16 010"), Ok(Value::U16(8)));
        assert_eq!(parse("42"), Ok(Value::I32(42)));
        assert_eq!(parse("1.5"), Ok(Value::Double(1.5)));
        assert_eq!(parse("double 2"), Ok(Value::Double(2.0)));
        assert_eq!(parse("true"), Ok(Value::Bool(true)));
        assert_eq!(parse("boolean false"), Ok(Value::Bool(false)));
        assert_eq!(parse("@t 7"), Ok(Value::U64(7)));
        assert_eq!(
            parse("'inactive-or-failed'"),
            Ok(Value::Str("inactive-or-failed".into()))
        );
        assert_eq!(
            parse(r#""it's \"x\"\n\u00e9""#),
            Ok(Value::Str("it's \"x\"\né".into()))
        );
        assert_eq!(
            parse("objectpath '/org/x'"),
            Ok(Value::ObjPath("/org/x".into()))
        );
        assert_eq!(parse("signature 'as'"), Ok(Value::Sig("as".into())));
    }

    #[test]
    fn gvariant_containers() {
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(
            parse("['a.service', 'b.service']"),
            Ok(Value::Array(
                "s".into(),
                vec![s("a.service"), s("b.service")]
            ))
        );
        assert_eq!(parse("@as []"), Ok(Value::Array("s".into(), vec![])));
        assert_eq!(
            parse("[uint64 1, 2]"),
            Ok(Value::Array("t".into(), vec![Value::U64(1), Value::U64(2)]))
        );
        assert_eq!(
            parse("@a(ss) [('/dev/null', 'rw')]"),
            Ok(Value::Array(
                "(ss)".into(),
                vec![Value::Struct(vec![s("/dev/null"), s("rw")])]
            ))
        );
        assert_eq!(
            parse("(1, 'x', true)"),
            Ok(Value::Struct(vec![
                Value::I32(1),
                s("x"),
                Value::Bool(true)
            ]))
        );
    }

    #[test]
    fn gvariant_errors() {
        for bad in [
            "",
            "uint64",
            "uint64 -1",
            "byte 256",
            "2147483648",
            "'open",
            "[]",
            "[1, 'x']",
            "[1 2]",
            "uint64 'x'",
            "@a{sv} []",
            "just 1",
            "1 2",
            "()",
            "@(ss) ('a')",
            "@(s) ('a', 'b')",
            "objectpath 'relative'",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ] {
            assert!(
                parse(bad).is_err(),
                "{bad:?} should not parse: {:?}",
                parse(bad)
            );
        }
    }

    #[test]
    fn annotations_become_properties_in_name_order() {
        let p = props(&[
            ("org.systemd.property.TimeoutStopUSec", "uint64 123456789"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.opencontainers.other", "ignored"),
            ("io.kubernetes.cri.sandbox-id", "x"),
        ])
        .unwrap();
        assert_eq!(
            p,
            vec![
                (
                    "CollectMode".into(),
                    Value::Str("inactive-or-failed".into())
                ),
                ("TimeoutStopUSec".into(), Value::U64(123456789)),
            ]
        );
    }

    #[test]
    fn sec_names_become_usec() {
        let p = props(&[
            ("org.systemd.property.TimeoutStopSec", "7"),
            ("org.systemd.property.RuntimeMaxSec", "uint64 2"),
            ("org.systemd.property.RuntimeRandomizedExtraSec", "0.5"),
            // an uppercase letter before Sec: not a time name (runc's rule)
            ("org.systemd.property.FooBARSec", "3"),
        ])
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("FooBARSec".into(), Value::I32(3)),
                ("RuntimeMaxUSec".into(), Value::U64(2_000_000)),
                ("RuntimeRandomizedExtraUSec".into(), Value::U64(500_000)),
                ("TimeoutStopUSec".into(), Value::U64(7_000_000)),
            ]
        );
        let e = props(&[("org.systemd.property.TimeoutStopSec", "'x'")]).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = props(&[("org.systemd.property.TimeoutStopSec", "-1")]).unwrap_err();
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn bad_annotations_name_the_key() {
        for (k, v, want) in [
            ("org.systemd.property.Ab", "1", "name incorrect"),
            ("org.systemd.property.Memory-Max", "1", "name incorrect"),
            ("org.systemd.property.", "1", "name incorrect"),
            (
                "org.systemd.property.MemoryMax",
                "uint64 x",
                "value parse error",
            ),
            (
                "org.systemd.property.CollectMode",
                "inactive",
                "value parse error",
            ),
        ] {
            let e = props(&[(k, v)]).unwrap_err();
            assert!(e.contains(k) && e.contains(want), "{k}={v}: {e}");
        }
    }
}
