//! The head: raw rows of windows not yet sealed into blocks, one fjall entry
//! per written row. This is where a write lands (in the same journal batch as
//! any new series ids), so an acknowledged row survives a crash; queries read
//! it directly, so a row is visible as soon as `write` returns.
//!
//! Key `agent (8) | ts (8, sign-flipped BE) | seq (8 BE)`; the sequence number
//! makes every write its own entry, so a later write of the same timestamp
//! wins per series without reading the earlier one.
//! Value (rows of data format 6): `0x00 | n (varint) | (sid varint, value)*n`,
//! where a value is one varint `zigzag(m) << 2 | d` for a number that is
//! exactly `m / 10^d` with `d` of 0, 1 or 2 (percentages, load averages,
//! byte counts: one to six bytes), or `3` followed by its f64 LE.
//! Rows of earlier formats, `n (varint) | (sid varint, f64 LE)*n`, still
//! read: they never start with `0x00` unless they are that one byte (an
//! empty row, which both layouts write the same).

use crate::error::Error;

use super::chunk::decoder::Reader;
use super::chunk::encoder::POW10;
use super::chunk::{put_varint, unzigzag, zigzag};
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

/// The first byte of a row of data format 6 or later.
const COMPACT: u8 = 0x00;
/// The value tag of a number stored as its f64.
const F64: u64 = 3;

pub fn encode_row(samples: &[(u32, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + samples.len() * 4);
    if samples.is_empty() {
        out.push(0);
        return out;
    }
    out.push(COMPACT);
    put_varint(&mut out, samples.len() as u64);
    for (sid, v) in samples {
        put_varint(&mut out, u64::from(*sid));
        match as_scaled(*v) {
            Some((m, d)) => put_varint(&mut out, zigzag(m) << 2 | d),
            None => {
                put_varint(&mut out, F64);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    out
}

/// `(m, d)` with `v` exactly `m / 10^d`, `d` at most 2 and `m` within
/// ±2^53; `None` for other numbers (and for -0.0 and NaN, kept bit for bit).
fn as_scaled(v: f64) -> Option<(i64, u64)> {
    (0..3u64).find_map(|d| {
        let m = (v * POW10[d as usize]).round();
        // Also false for NaN and the infinities.
        if m.is_nan() || m.abs() >= 9_007_199_254_740_992.0 {
            return None;
        }
        // What the reader computes, from the integer (so -0.0 is not 0).
        let m = m as i64;
        ((m as f64 / POW10[d as usize]).to_bits() == v.to_bits()).then_some((m, d))
    })
}

pub fn decode_row(bytes: &[u8]) -> Result<Vec<(u32, f64)>, Error> {
    let bad = |d: &'static str| Error::corrupt("head row", d);
    let compact = bytes.len() > 1 && bytes[0] == COMPACT;
    let mut r = Reader::new(if compact { &bytes[1..] } else { bytes });
    // At least two bytes per sample (one for the old layout's f64 part).
    let n = r
        .len(bytes.len() / if compact { 2 } else { 9 })
        .map_err(|e| bad(e.0))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let sid = u32::try_from(r.varint().map_err(|e| bad(e.0))?)
            .map_err(|_| bad("series id too large"))?;
        let v = if compact {
            let x = r.varint().map_err(|e| bad(e.0))?;
            match x & 3 {
                F64 => f64_at(&mut r).map_err(bad)?,
                d => unzigzag(x >> 2) as f64 / POW10[d as usize],
            }
        } else {
            f64_at(&mut r).map_err(bad)?
        };
        out.push((sid, v));
    }
    Ok(out)
}

fn f64_at(r: &mut Reader<'_>) -> Result<f64, &'static str> {
    let b = r.bytes(8).map_err(|e| e.0)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(f64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn same(a: &[(u32, f64)], b: &[(u32, f64)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    #[test]
    fn rows_round_trip_bit_for_bit_and_garbage_is_an_error() {
        let row = vec![
            (0, 1.5),
            (300, -2.25),
            (7, f64::NAN),
            (8, -0.0),
            (9, 0.0),
            (10, 45.3),
            (11, 0.1 + 0.2),
            (12, 6_442_450_944.0),
            (13, 9_007_199_254_740_993.0),
            (14, f64::INFINITY),
            (15, 1e300),
            (16, 12.345),
            (u32::MAX, -1.07),
        ];
        assert!(same(&decode_row(&encode_row(&row)).unwrap(), &row));
        assert!(decode_row(&encode_row(&[])).unwrap().is_empty());
        assert!(decode_row(&[3, 1, 2]).is_err());
        assert!(decode_row(&[0, 3, 1, 2]).is_err());
        assert!(decode_row(&[0, 1, 1, 3, 0]).is_err(), "a cut f64");
        assert_eq!(parse_head_key(&head_key(9, -7, 3)).unwrap(), (9, -7, 3));
    }

    /// Rows written by data formats up to 5, byte for byte.
    #[test]
    fn rows_of_earlier_formats_still_read() {
        let mut old = vec![2, 5];
        old.extend_from_slice(&45.3f64.to_le_bytes());
        old.extend_from_slice(&[0x80, 0x01]);
        old.extend_from_slice(&(-0.5f64).to_le_bytes());
        assert!(same(&decode_row(&old).unwrap(), &[(5, 45.3), (128, -0.5)]));
        // An old row whose count's varint starts with 0x80 (128 samples).
        let mut many = vec![0x80, 0x01];
        for sid in 0..128u8 {
            many.push(sid);
            many.extend_from_slice(&f64::from(sid).to_le_bytes());
        }
        let back = decode_row(&many).unwrap();
        assert_eq!(back.len(), 128);
        assert_eq!(back[127], (127, 127.0));
        assert!(decode_row(&[0]).unwrap().is_empty());
    }

    #[test]
    fn a_reports_row_takes_less_than_half_the_bytes_of_f64s() {
        // Percentages with a decimal, MHz, load, bytes in pages, rates.
        let row: Vec<(u32, f64)> = [
            12.3,
            45.0,
            99.9,
            0.0,
            2_400.0,
            3_600.0,
            1.07,
            0.93,
            6_442_450_944.0,
            8_589_934_592.0,
            131_072.0,
            1_234_567.0,
            0.0,
            98_304.0,
            87_000.0,
        ]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u32, *v))
        .collect();
        let f64s = 2 + row.len() * 9;
        let compact = encode_row(&row).len();
        assert!(compact * 2 < f64s, "{compact} bytes against {f64s}");
    }

    proptest! {
        #[test]
        fn any_row_round_trips(row in proptest::collection::vec((any::<u32>(), any::<u64>()), 0..50)) {
            let row: Vec<(u32, f64)> = row.into_iter().map(|(s, b)| (s, f64::from_bits(b))).collect();
            prop_assert!(same(&decode_row(&encode_row(&row)).unwrap(), &row));
        }

        #[test]
        fn decimal_rows_round_trip(row in proptest::collection::vec((any::<u32>(), -10_000_000i64..10_000_000, 0u32..4), 0..50)) {
            let row: Vec<(u32, f64)> = row.into_iter().map(|(s, m, d)| (s, m as f64 / 10f64.powi(d as i32))).collect();
            prop_assert!(same(&decode_row(&encode_row(&row)).unwrap(), &row));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_row(&bytes);
        }
    }
}
