//! Record codec: one version byte, then the record as bincode 2 (serde, the
//! standard config: little-endian varints). A record whose version byte is
//! unknown, or whose bytes do not decode completely, is
//! [`CatalogError::Corrupt`], never a panic.
//!
//! Record structs must not use `skip_serializing_if` (bincode is not
//! self-describing: a skipped field shifts everything after it). New versions
//! get a new byte and a decode branch that upgrades the old layout.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::CatalogError;

/// The first record layout, still the layout of most records.
pub const VERSION_1: u8 = 1;
/// The second layout of users and agents (data format 4); their version-1
/// records are read and upgraded by `users::decode_user` and
/// `agents::decode_agent`.
pub const VERSION_2: u8 = 2;

/// Upper bound for one decoded record, so damaged length prefixes cannot make
/// the decoder allocate gigabytes.
const MAX_RECORD_BYTES: usize = 1 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// `[VERSION_1] ++ bincode(value)`.
pub fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, CatalogError> {
    encode_as(VERSION_1, what, value)
}

/// `[version] ++ bincode(value)`: for records with more than one layout.
pub fn encode_as<T: Serialize>(
    version: u8,
    what: &str,
    value: &T,
) -> Result<Vec<u8>, CatalogError> {
    let mut out = vec![version];
    let body =
        bincode::serde::encode_to_vec(value, config()).map_err(|e| CatalogError::Encode {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The inverse of [`encode`]; `what` names the record in the error.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, CatalogError> {
    let (version, body) = split(what, bytes)?;
    if version != VERSION_1 {
        return Err(unknown_version(what, version));
    }
    decode_body(what, body)
}

/// The version byte and the body of a record, for decoders that read
/// several layouts.
pub fn split<'a>(what: &str, bytes: &'a [u8]) -> Result<(u8, &'a [u8]), CatalogError> {
    let (&version, body) = bytes.split_first().ok_or_else(|| CatalogError::Corrupt {
        what: what.to_string(),
        reason: "empty record".into(),
    })?;
    Ok((version, body))
}

/// The error for a version byte no decoder knows.
pub fn unknown_version(what: &str, version: u8) -> CatalogError {
    CatalogError::Corrupt {
        what: what.to_string(),
        reason: format!("unknown record version {version}"),
    }
}

/// Decodes a record body (after the version byte), which must be used up.
pub fn decode_body<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, CatalogError> {
    let corrupt = |reason: String| CatalogError::Corrupt {
        what: what.to_string(),
        reason,
    };
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, config())
        .map_err(|e| corrupt(e.to_string()))?;
    if used != body.len() {
        return Err(corrupt(format!(
            "{} trailing bytes after the record",
            body.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        id: u64,
        name: String,
        seen: Option<i64>,
    }

    fn rec() -> Rec {
        Rec {
            id: 7,
            name: "nas".into(),
            seen: Some(-3),
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode("rec", &rec()).unwrap();
        assert_eq!(bytes[0], VERSION_1);
        assert_eq!(decode::<Rec>("rec", &bytes).unwrap(), rec());
    }

    #[test]
    fn unknown_version_byte_is_corrupt_not_a_panic() {
        let mut bytes = encode("rec", &rec()).unwrap();
        bytes[0] = 99;
        let err = decode::<Rec>("user 7", &bytes).unwrap_err();
        assert!(
            matches!(&err, CatalogError::Corrupt { what, reason }
                if what == "user 7" && reason.contains("version 99")),
            "{err}"
        );
    }

    #[test]
    fn empty_truncated_and_trailing_bytes_are_corrupt() {
        assert!(matches!(
            decode::<Rec>("rec", &[]),
            Err(CatalogError::Corrupt { .. })
        ));
        let bytes = encode("rec", &rec()).unwrap();
        for cut in 1..bytes.len() {
            assert!(
                matches!(
                    decode::<Rec>("rec", &bytes[..cut]),
                    Err(CatalogError::Corrupt { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<Rec>("rec", &longer),
            Err(CatalogError::Corrupt { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep standing in for a fuzz target.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = decode::<Rec>("rec", &bytes);
        }
        // A huge claimed string length must not allocate: the limit refuses it.
        let mut bytes = vec![VERSION_1, 7, 0xfc, 0xff, 0xff, 0xff, 0x7f];
        bytes.extend_from_slice(b"x");
        assert!(decode::<Rec>("rec", &bytes).is_err());
    }
}
