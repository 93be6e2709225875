//! Series identity: agent-local series ids interned in the `meta` keyspace,
//! and the byte layout of every key the engine writes.
//!
//! A series is (agent, metric, labels). Each agent has its own dense `u32`
//! ids, assigned on first sight and persisted in the same batch as the first
//! sample that uses them; new metrics need no migration.

use crate::error::Error;
use crate::model::SeriesKey;

use super::chunk::decoder::Reader;
use super::chunk::put_varint;

/// Meta key prefixes.
pub mod meta {
    /// `S | agent | sid` → encoded [`SeriesKey`](crate::model::SeriesKey).
    pub const SERIES: u8 = b'S';
    /// `W | agent | tier` → i64 watermark: aggregates are complete before it.
    pub const WATERMARK: u8 = b'W';
    /// `D | agent | tier | hour` → u64 generation: that hour must be recomputed.
    pub const DIRTY: u8 = b'D';
    /// `X | agent` → i64 time of deletion.
    pub const DELETED: u8 = b'X';
    /// `H | agent | hour` → empty: the agent has head rows in that raw window.
    pub const HEAD_WINDOW: u8 = b'H';
    /// `I` alone → empty: every head window has its `H` key (written once,
    /// when a directory made before `H` keys existed is first opened).
    pub const HEAD_INDEXED: u8 = b'I';
}

/// i64 → u64 that sorts like the i64 in big-endian bytes.
pub fn ts_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn ts_from(b: &[u8]) -> Option<i64> {
    let a: [u8; 8] = b.try_into().ok()?;
    Some((u64::from_be_bytes(a) ^ (1 << 63)) as i64)
}

pub fn u64_from(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Key of one block: `agent | window start`.
pub fn block_key(agent: u64, window: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&agent.to_be_bytes());
    k[8..].copy_from_slice(&ts_bytes(window));
    k
}

pub fn series_meta_key(agent: u64, sid: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(meta::SERIES);
    k.extend_from_slice(&agent.to_be_bytes());
    k.extend_from_slice(&sid.to_be_bytes());
    k
}

pub fn watermark_key(agent: u64, tier: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.push(meta::WATERMARK);
    k.extend_from_slice(&agent.to_be_bytes());
    k.push(tier);
    k
}

pub fn dirty_key(agent: u64, tier: u8, hour: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.push(meta::DIRTY);
    k.extend_from_slice(&agent.to_be_bytes());
    k.push(tier);
    k.extend_from_slice(&ts_bytes(hour));
    k
}

pub fn head_window_key(agent: u64, hour: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(meta::HEAD_WINDOW);
    k.extend_from_slice(&agent.to_be_bytes());
    k.extend_from_slice(&ts_bytes(hour));
    k
}

pub fn deleted_key(agent: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(meta::DELETED);
    k.extend_from_slice(&agent.to_be_bytes());
    k
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// `metric, n_labels, (name, value)*`, each string as varint length + UTF-8.
pub fn encode_series_key(key: &SeriesKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    put_str(&mut out, &key.metric);
    put_varint(&mut out, key.labels.len() as u64);
    for (k, v) in &key.labels {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out
}

pub fn decode_series_key(bytes: &[u8]) -> Result<SeriesKey, Error> {
    let bad = |d: &'static str| Error::corrupt("series dictionary", d);
    let mut r = Reader::new(bytes);
    let string = |r: &mut Reader<'_>| -> Result<String, Error> {
        let n = r.len(bytes.len()).map_err(|e| bad(e.0))?;
        let b = r.bytes(n).map_err(|e| bad(e.0))?;
        String::from_utf8(b.to_vec()).map_err(|_| bad("series name is not UTF-8"))
    };
    let metric = string(&mut r)?;
    let n = r.len(bytes.len()).map_err(|e| bad(e.0))?;
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let k = string(&mut r)?;
        let v = string(&mut r)?;
        labels.push((k, v));
    }
    Ok(SeriesKey { metric, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_round_trip() {
        let k = SeriesKey::with_labels("disk.used_bytes", [("mount", "/var")]);
        assert_eq!(decode_series_key(&encode_series_key(&k)).unwrap(), k);
        assert!(decode_series_key(&[5, b'a']).is_err());
    }

    #[test]
    fn timestamps_sort_as_bytes() {
        let mut v = [-5i64, 3, i64::MIN, 0, i64::MAX];
        let mut b: Vec<[u8; 8]> = v.iter().map(|t| ts_bytes(*t)).collect();
        v.sort();
        b.sort();
        let back: Vec<i64> = b.iter().map(|x| ts_from(x).unwrap()).collect();
        assert_eq!(back, v);
    }
}
