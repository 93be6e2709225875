//! The head: raw rows of windows not yet sealed into blocks, one fjall entry
//! per written row. This is where a write lands (in the same journal batch as
//! any new series ids), so an acknowledged row survives a crash; queries read
//! it directly, so a row is visible as soon as `write` returns.
//!
//! Key `agent (8) | ts (8, sign-flipped BE) | seq (8 BE)`; the sequence number
//! makes every write its own entry, so a later write of the same timestamp
//! wins per series without reading the earlier one.
//! Value `n (varint) | (sid varint, f64 LE)*n`.

use crate::error::Error;

use super::chunk::decoder::Reader;
use super::chunk::put_varint;
use super::series::{ts_bytes, ts_from, u64_from};

pub fn head_key(agent: u64, ts: i64, seq: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&agent.to_be_bytes());
    k[8..16].copy_from_slice(&ts_bytes(ts));
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The smallest head key of `agent` at `ts` (range bound).
pub fn head_bound(agent: u64, ts: i64) -> [u8; 24] {
    head_key(agent, ts, 0)
}

/// `(agent, ts, seq)` of a head key.
pub fn parse_head_key(k: &[u8]) -> Result<(u64, i64, u64), Error> {
    if k.len() != 24 {
        return Err(Error::corrupt(
            "head key",
            format!("{} bytes, expected 24", k.len()),
        ));
    }
    let bad = || Error::corrupt("head key", "unreadable");
    Ok((
        u64_from(&k[..8]).ok_or_else(bad)?,
        ts_from(&k[8..16]).ok_or_else(bad)?,
        u64_from(&k[16..]).ok_or_else(bad)?,
    ))
}

pub fn encode_row(samples: &[(u32, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + samples.len() * 10);
    put_varint(&mut out, samples.len() as u64);
    for (sid, v) in samples {
        put_varint(&mut out, u64::from(*sid));
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn decode_row(bytes: &[u8]) -> Result<Vec<(u32, f64)>, Error> {
    let bad = |d: &'static str| Error::corrupt("head row", d);
    let mut r = Reader::new(bytes);
    let n = r.len(bytes.len() / 9).map_err(|e| bad(e.0))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let sid = u32::try_from(r.varint().map_err(|e| bad(e.0))?)
            .map_err(|_| bad("series id too large"))?;
        let b = r.bytes(8).map_err(|e| bad(e.0))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        out.push((sid, f64::from_le_bytes(a)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_garbage_is_an_error() {
        let row = vec![(0, 1.5), (300, -2.25), (7, f64::NAN)];
        let back = decode_row(&encode_row(&row)).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1], (300, -2.25));
        assert!(decode_row(&[3, 1, 2]).is_err());
        assert_eq!(parse_head_key(&head_key(9, -7, 3)).unwrap(), (9, -7, 3));
    }
}
