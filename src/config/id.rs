//! Container ids: they become directory names under the state root, so they are checked strictly.

use super::Error;

/// runc's rule: `[A-Za-z0-9][A-Za-z0-9_.+-]*`, which also excludes `/`, `..` as a whole and empty ids.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::Id {
            id: id.to_string(),
            reason,
        })
    };
    let mut chars = id.chars();
    match chars.next() {
        None => return bad("it is empty"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return bad("it must start with a letter or digit")
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c)) {
        return bad("only letters, digits and _ . + - are allowed");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_ids() {
        for id in ["a", "abc-1", "A.b_c+d", "0", "x..y"] {
            validate_id(id).unwrap();
        }
    }

    #[test]
    fn bad_ids() {
        for id in ["", "..", ".a", "-a", "a/b", "../x", "a b", "a\0", "é", "_x"] {
            assert!(validate_id(id).is_err(), "{id:?}");
        }
    }
}
