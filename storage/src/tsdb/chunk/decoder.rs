//! Decoders for columns and blocks. Every decoder returns an error on bytes
//! it cannot read (truncated, impossible widths, absurd lengths); none panics
//! or allocates more than the input can justify.

use std::borrow::Cow;

use super::encoder::{MAX_SCALE, POW10};
use super::{
    BLOCK_V1, BLOCK_V2, BLOCK_V3, BLOCK_V4, Block, BlockKind, FLAG_ZSTD, GROUP, MAX_ROWS,
    SeriesColumns, itag, layout, sum_mode, tag, unzigzag,
};

/// Why bytes did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

/// The largest body a zstd block may claim once decompressed.
const MAX_BODY: usize = 64 << 20;

/// A cursor over bytes.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn u8(&mut self) -> Result<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or(DecodeError("truncated: expected a byte"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    /// A varint that is a length or count, bounded by `max`.
    pub fn len(&mut self, max: usize) -> Result<usize> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err(DecodeError("length out of range"));
        }
        Ok(v as usize)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or(DecodeError("truncated: fewer bytes than announced"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos.min(self.data.len())..];
        self.pos = self.data.len();
        s
    }

    /// The bytes not read yet, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }

    /// Consume `n` bytes (at most what is left).
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

/// LSB-first bit reader.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, n: u32) -> Result<u64> {
        if n == 0 {
            return Ok(0);
        }
        // Fast path: the bits lie within the next 8 bytes.
        if n <= 56 {
            let byte = self.pos / 8;
            if let Some(w) = self.data.get(byte..byte + 8) {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                let w = u64::from_le_bytes(a) >> (self.pos % 8);
                self.pos += n as usize;
                return Ok(w & ((1u64 << n) - 1));
            }
        }
        if n > 32 {
            let lo = self.read(32)?;
            let hi = self.read(n - 32)?;
            return Ok(lo | (hi << 32));
        }
        let end = self.pos + n as usize;
        if end > self.data.len() * 8 {
            return Err(DecodeError("truncated bit stream"));
        }
        let byte = self.pos / 8;
        let shift = self.pos % 8;
        let mut acc = 0u64;
        for i in 0..5 {
            if let Some(b) = self.data.get(byte + i) {
                acc |= u64::from(*b) << (8 * i);
            }
        }
        self.pos = end;
        Ok((acc >> shift) & ((1u64 << n) - 1))
    }
}

fn unpack_groups(r: &mut Reader<'_>, count: usize, out: &mut Vec<u64>) -> Result<()> {
    let mut left = count;
    while left > 0 {
        let g = left.min(GROUP);
        unpack_one(r, g, out)?;
        left -= g;
    }
    Ok(())
}

fn unpack_one(r: &mut Reader<'_>, g: usize, out: &mut Vec<u64>) -> Result<()> {
    let w = u32::from(r.u8()?);
    if w > 64 {
        return Err(DecodeError("bit width above 64"));
    }
    if w == 0 {
        out.extend(std::iter::repeat_n(0, g));
        return Ok(());
    }
    let bytes = r.bytes((g * w as usize).div_ceil(8))?;
    let mut br = BitReader {
        data: bytes,
        pos: 0,
    };
    for _ in 0..g {
        out.push(br.read(w)?);
    }
    Ok(())
}

/// Decode an integer column of `n` values.
pub(crate) fn decode_ints(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>> {
    decode_ints_at(r, n, 0)
}

/// `depth`: how many wrapping columns (common factor, sparse) enclose this
/// one. The encoder nests at most two (sparse, then factor); refusing deeper
/// nesting bounds the recursion on hostile input.
fn decode_ints_at(r: &mut Reader<'_>, n: usize, depth: u8) -> Result<Vec<i64>> {
    if n > MAX_ROWS {
        return Err(DecodeError("too many values"));
    }
    let t = r.u8()?;
    if t == itag::CONST {
        let v = unzigzag(r.varint()?);
        return Ok(vec![v; n]);
    }
    if t == itag::SPARSE && depth < 2 {
        let bitmap = r.bytes(n.div_ceil(8))?;
        let ones: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        let nonzero = decode_ints_at(r, ones, depth + 1)?;
        let mut it = nonzero.into_iter();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if bitmap[i / 8] & (1 << (i % 8)) != 0 {
                out.push(it.next().ok_or(DecodeError("sparse column too short"))?);
            } else {
                out.push(0);
            }
        }
        if it.next().is_some() {
            return Err(DecodeError("sparse bitmap has bits past the last value"));
        }
        return Ok(out);
    }
    if t == itag::GCD && depth < 2 {
        let g = r.varint()?;
        if g < 2 || g > i64::MAX as u64 {
            return Err(DecodeError("common factor out of range"));
        }
        let mut inner = decode_ints_at(r, n, depth + 1)?;
        for v in &mut inner {
            *v = v.wrapping_mul(g as i64);
        }
        return Ok(inner);
    }
    if n == 0 {
        return Err(DecodeError("non-constant encoding of an empty column"));
    }
    // Every non-constant encoding needs at least one byte per group: a cheap
    // bound before allocating.
    if r.remaining() < n.div_ceil(GROUP) {
        return Err(DecodeError("truncated integer column"));
    }
    let mut out = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n.min(GROUP));
    match t {
        itag::FOR => {
            let mut left = n;
            while left > 0 {
                let g = left.min(GROUP);
                let min = unzigzag(r.varint()?);
                raw.clear();
                unpack_one(r, g, &mut raw)?;
                out.extend(raw.iter().map(|o| min.wrapping_add(*o as i64)));
                left -= g;
            }
        }
        itag::DELTA => {
            let mut v = unzigzag(r.varint()?);
            out.push(v);
            raw.reserve(n);
            unpack_groups(r, n - 1, &mut raw)?;
            for d in &raw {
                v = v.wrapping_add(unzigzag(*d));
                out.push(v);
            }
        }
        itag::DOD => {
            let mut v = unzigzag(r.varint()?);
            out.push(v);
            if n >= 2 {
                let mut d = unzigzag(r.varint()?);
                v = v.wrapping_add(d);
                out.push(v);
                raw.reserve(n);
                unpack_groups(r, n - 2, &mut raw)?;
                for dd in &raw {
                    d = d.wrapping_add(unzigzag(*dd));
                    v = v.wrapping_add(d);
                    out.push(v);
                }
            }
        }
        itag::ENTROPY => return super::entropy::decode_entropy(r, n),
        itag::HUFFMAN => return super::huffman::decode_huffman(r, n),
        _ => return Err(DecodeError("unknown integer column tag")),
    }
    Ok(out)
}

fn decode_gorilla(data: &[u8], n: usize) -> Result<Vec<f64>> {
    // At least one bit per value after the first 64: bound before allocating.
    if data.len() * 8 < 64 + n.saturating_sub(1) {
        return Err(DecodeError("truncated gorilla column"));
    }
    let mut br = BitReader { data, pos: 0 };
    let mut prev = br.read(64)?;
    let mut out = Vec::with_capacity(n);
    out.push(f64::from_bits(prev));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if br.read(1)? == 0 {
            out.push(f64::from_bits(prev));
            continue;
        }
        let x = if br.read(1)? == 0 {
            let (pl, pt) = window.ok_or(DecodeError("gorilla reuses a window it never set"))?;
            br.read(64 - pl - pt)? << pt
        } else {
            let lead = br.read(5)? as u32;
            let sig = br.read(6)? as u32 + 1;
            if lead + sig > 64 {
                return Err(DecodeError("gorilla window wider than 64 bits"));
            }
            let trail = 64 - lead - sig;
            window = Some((lead, trail));
            br.read(sig)? << trail
        };
        prev ^= x;
        out.push(f64::from_bits(prev));
    }
    Ok(out)
}

/// Decode a float column of `n` values from exactly `data`.
pub fn decode_column(data: &[u8], n: usize) -> Result<Vec<f64>> {
    if n > MAX_ROWS {
        return Err(DecodeError("too many values"));
    }
    let mut r = Reader::new(data);
    match r.u8()? {
        tag::CONST => {
            let b = r.bytes(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(vec![f64::from_le_bytes(a); n])
        }
        tag::DECIMAL => {
            let scale = r.u8()?;
            if scale > MAX_SCALE {
                return Err(DecodeError("decimal scale above 9"));
            }
            let p = POW10[scale as usize];
            let ints = decode_ints(&mut r, n)?;
            Ok(ints.into_iter().map(|i| i as f64 / p).collect())
        }
        tag::GORILLA if n == 0 => Err(DecodeError("gorilla column without values")),
        tag::GORILLA => decode_gorilla(r.rest(), n),
        tag::RAW => {
            let b = r.bytes(n.checked_mul(8).ok_or(DecodeError("length overflow"))?)?;
            Ok(b.chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a)
                })
                .collect())
        }
        _ => Err(DecodeError("unknown column tag")),
    }
}

/// `k` float columns of `n` values, each `varint len · column`.
fn float_columns(r: &mut Reader<'_>, k: usize, n: usize) -> Result<Vec<Vec<f64>>> {
    let mut cols = Vec::with_capacity(k);
    for _ in 0..k {
        let len = r.len(r.remaining())?;
        cols.push(decode_column(r.bytes(len)?, n)?);
    }
    Ok(cols)
}

/// The five columns of an aggregate series in the [`layout::OFFSETS`]
/// layout (after its layout byte), which must use up `r`.
fn agg_offsets(r: &mut Reader<'_>, n: usize) -> Result<Vec<Vec<f64>>> {
    let scale = r.u8()?;
    if scale > MAX_SCALE {
        return Err(DecodeError("decimal scale above 9"));
    }
    let p = POW10[scale as usize];
    let mins = decode_ints(r, n)?;
    let spread = decode_ints(r, n)?;
    let counts = decode_ints(r, n)?;
    let last_off = decode_ints(r, n)?;
    let mode = r.u8()?;
    let stored = decode_ints(r, n)?;
    if r.remaining() != 0 {
        return Err(DecodeError("bytes after an aggregate series"));
    }
    let maxs: Vec<i64> = mins
        .iter()
        .zip(&spread)
        .map(|(m, s)| m.wrapping_add(*s))
        .collect();
    let sums = sums_from(mode, stored, &mins, &maxs, &counts)?;
    let dec = |v: i64| v as f64 / p;
    Ok(vec![
        mins.iter().map(|m| dec(*m)).collect(),
        maxs.into_iter().map(dec).collect(),
        sums.into_iter().map(dec).collect(),
        counts.iter().map(|c| *c as f64).collect(),
        mins.iter()
            .zip(&last_off)
            .map(|(m, l)| dec(m.wrapping_add(*l)))
            .collect(),
    ])
}

/// The sum as [`agg_offsets`] and [`agg_residuals`] store it: `stored` in
/// `mode`, undone with the wrapping operations the encoder used.
fn sums_from(
    mode: u8,
    stored: Vec<i64>,
    mins: &[i64],
    maxs: &[i64],
    counts: &[i64],
) -> Result<Vec<i64>> {
    let n = stored.len();
    Ok(match mode {
        sum_mode::PLAIN => stored,
        sum_mode::OVER_MIN => (0..n)
            .map(|i| stored[i].wrapping_add(counts[i].wrapping_mul(mins[i])))
            .collect(),
        sum_mode::OVER_MID => (0..n)
            .map(|i| {
                let mid = counts[i].wrapping_mul(mins[i].wrapping_add(maxs[i]));
                stored[i].wrapping_add(mid) / 2
            })
            .collect(),
        sum_mode::HALF_MID => (0..n)
            .map(|i| stored[i].wrapping_add(sum_mode::half_mid(counts[i], mins[i], maxs[i])))
            .collect(),
        _ => return Err(DecodeError("unknown sum mode")),
    })
}

/// The five columns of an aggregate series in the [`layout::RESIDUALS`]
/// layout (after its layout byte), which must use up `r`.
fn agg_residuals(r: &mut Reader<'_>, n: usize) -> Result<Vec<Vec<f64>>> {
    let scale = r.u8()?;
    if scale > MAX_SCALE {
        return Err(DecodeError("decimal scale above 9"));
    }
    let p = POW10[scale as usize];
    let anchor = unzigzag(r.varint()?);
    let moves = decode_ints(r, n)?;
    let below = decode_ints(r, n)?;
    let above = decode_ints(r, n)?;
    let counts = decode_ints(r, n)?;
    let mode = r.u8()?;
    let stored = decode_ints(r, n)?;
    if r.remaining() != 0 {
        return Err(DecodeError("bytes after an aggregate series"));
    }
    let mut mins = below;
    let mut maxs = above;
    let mut lasts = moves;
    let mut prev = anchor;
    for i in 0..n {
        let last = prev.wrapping_add(lasts[i]);
        mins[i] = prev.min(last).wrapping_sub(mins[i]);
        maxs[i] = prev.max(last).wrapping_add(maxs[i]);
        lasts[i] = last;
        prev = last;
    }
    let sums = sums_from(mode, stored, &mins, &maxs, &counts)?;
    let dec = |v: &i64| *v as f64 / p;
    Ok(vec![
        mins.iter().map(dec).collect(),
        maxs.iter().map(dec).collect(),
        sums.iter().map(dec).collect(),
        counts.iter().map(|c| *c as f64).collect(),
        lasts.iter().map(dec).collect(),
    ])
}

struct Entry {
    sid: u32,
    n_present: usize,
    /// Offset of the presence bitmap in the body, when not every row is present.
    bitmap: Option<usize>,
    data_off: usize,
    data_len: usize,
}

/// A parsed block: header, timestamps and index decoded; series decoded on demand.
pub struct BlockReader<'a> {
    version: u8,
    kind: BlockKind,
    body: Cow<'a, [u8]>,
    ts: Vec<i64>,
    entries: Vec<Entry>,
}

impl<'a> BlockReader<'a> {
    /// Parse a block's header, timestamp column and index.
    pub fn parse(bytes: &'a [u8]) -> Result<BlockReader<'a>> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if !(BLOCK_V1..=BLOCK_V4).contains(&version) {
            return Err(DecodeError("unknown block version"));
        }
        let flags = r.u8()?;
        if flags & !FLAG_ZSTD != 0 {
            return Err(DecodeError("unknown block flags"));
        }
        let kind = match r.u8()? {
            0 => BlockKind::Raw,
            1 => BlockKind::Agg,
            _ => return Err(DecodeError("unknown block kind")),
        };
        let body: Cow<'a, [u8]> = if flags & FLAG_ZSTD != 0 {
            let len = r.len(MAX_BODY)?;
            let z = r.rest();
            // A zstd frame expands at most ~1000x here; refuse absurd claims.
            if len > z.len().saturating_mul(2048) {
                return Err(DecodeError("zstd body length implausible"));
            }
            let body = zstd::bulk::decompress(z, len).map_err(|_| DecodeError("bad zstd frame"))?;
            if body.len() != len {
                return Err(DecodeError("zstd body length mismatch"));
            }
            Cow::Owned(body)
        } else {
            Cow::Borrowed(r.rest())
        };

        let mut r = Reader::new(&body);
        let n = r.len(MAX_ROWS)?;
        let ts_len = r.len(MAX_BODY)?;
        let ts = decode_ints(&mut Reader::new(r.bytes(ts_len)?), n)?;
        if ts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DecodeError("timestamps not strictly increasing"));
        }
        let n_series = r.len(r.remaining())?;
        let mut entries = Vec::with_capacity(n_series);
        let mut data_len_total = 0usize;
        for _ in 0..n_series {
            let sid = u32::try_from(r.varint()?).map_err(|_| DecodeError("series id too large"))?;
            let n_present = r.len(n)?;
            let bitmap = if n_present != n {
                let off = r.pos;
                let bm = r.bytes(n.div_ceil(8))?;
                let ones: usize = bm.iter().map(|b| b.count_ones() as usize).sum();
                if ones != n_present {
                    return Err(DecodeError("presence bitmap disagrees with its count"));
                }
                Some(off)
            } else {
                None
            };
            let data_len = r.len(MAX_BODY)?;
            entries.push(Entry {
                sid,
                n_present,
                bitmap,
                data_off: data_len_total,
                data_len,
            });
            data_len_total = data_len_total
                .checked_add(data_len)
                .ok_or(DecodeError("length overflow"))?;
        }
        let data_start = r.pos;
        if r.remaining() < data_len_total {
            return Err(DecodeError("series data truncated"));
        }
        for e in &mut entries {
            e.data_off += data_start;
        }
        Ok(BlockReader {
            version,
            kind,
            body,
            ts,
            entries,
        })
    }

    pub fn kind(&self) -> BlockKind {
        self.kind
    }

    /// The block's timestamps.
    pub fn ts(&self) -> &[i64] {
        &self.ts
    }

    /// Series ids in index order.
    pub fn sids(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|e| e.sid)
    }

    /// Decode the series at index position `i`.
    pub fn series(&self, i: usize) -> Result<SeriesColumns> {
        let e = self
            .entries
            .get(i)
            .ok_or(DecodeError("series index out of range"))?;
        let n = self.ts.len();
        let rows: Vec<u32> = match e.bitmap {
            None => (0..n as u32).collect(),
            Some(off) => {
                let bm = self
                    .body
                    .get(off..off + n.div_ceil(8))
                    .ok_or(DecodeError("bitmap out of range"))?;
                (0..n as u32)
                    .filter(|r| bm[*r as usize / 8] & (1 << (r % 8)) != 0)
                    .collect()
            }
        };
        if rows.len() != e.n_present {
            return Err(DecodeError("presence bitmap has bits past the last row"));
        }
        let data = self
            .body
            .get(e.data_off..e.data_off + e.data_len)
            .ok_or(DecodeError("series data out of range"))?;
        let mut r = Reader::new(data);
        let cols = if self.kind == BlockKind::Agg && self.version >= BLOCK_V2 {
            match r.u8()? {
                layout::FLOATS => float_columns(&mut r, self.kind.columns(), e.n_present)?,
                layout::OFFSETS => agg_offsets(&mut r, e.n_present)?,
                layout::RESIDUALS if self.version >= BLOCK_V3 => {
                    agg_residuals(&mut r, e.n_present)?
                }
                _ => return Err(DecodeError("unknown aggregate series layout")),
            }
        } else {
            float_columns(&mut r, self.kind.columns(), e.n_present)?
        };
        Ok(SeriesColumns {
            sid: e.sid,
            rows,
            cols,
        })
    }

    /// The layout byte of the aggregate series at index position `i` in a
    /// version-2 block.
    #[cfg(test)]
    pub(crate) fn layout_of(&self, i: usize) -> Option<u8> {
        let e = self.entries.get(i)?;
        (self.kind == BlockKind::Agg && self.version >= BLOCK_V2)
            .then(|| self.body.get(e.data_off).copied())
            .flatten()
    }

    /// Position of series `sid` in the index.
    pub fn find(&self, sid: u32) -> Option<usize> {
        self.entries.iter().position(|e| e.sid == sid)
    }

    /// Decode everything.
    pub fn to_block(&self) -> Result<Block> {
        let series = (0..self.entries.len())
            .map(|i| self.series(i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Block {
            kind: self.kind,
            ts: self.ts.clone(),
            series,
        })
    }
}

/// Decode a whole block (what the fuzz target drives).
pub fn decode_block(bytes: &[u8]) -> Result<Block> {
    BlockReader::parse(bytes)?.to_block()
}

#[cfg(test)]
mod tests {
    use super::super::encoder::{encode_block, encode_column, encode_ints};
    use super::*;
    use proptest::prelude::*;

    fn round_trip_col(vals: &[f64]) -> usize {
        let mut out = Vec::new();
        encode_column(vals, &mut out);
        let back = decode_column(&out, vals.len()).unwrap();
        assert_eq!(back.len(), vals.len());
        for (a, b) in vals.iter().zip(&back) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
        }
        out.len()
    }

    #[test]
    fn constant_column_costs_nine_bytes() {
        assert_eq!(round_trip_col(&[42.5; 720]), 9);
    }

    #[test]
    fn one_decimal_percentages_are_small() {
        let mut v = 20.0f64;
        let mut x = 1u64;
        let vals: Vec<f64> = (0..720)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v = (v + ((x >> 33) % 41) as f64 / 10.0 - 2.0).clamp(0.0, 100.0);
                (v * 10.0).round() / 10.0
            })
            .collect();
        let len = round_trip_col(&vals);
        assert!(len < 720, "{len} bytes for 720 values");
    }

    #[test]
    fn specials_round_trip() {
        round_trip_col(&[f64::NAN, -0.0, f64::INFINITY, 1e300, 0.1, f64::MIN_POSITIVE]);
        round_trip_col(&[0.1, 0.2, 0.30000000000000004]);
    }

    #[test]
    fn page_multiples_use_the_common_factor() {
        let vals: Vec<i64> = (0..720)
            .map(|i| (1_000_000 + (i * 7919) % 2048) * 4096)
            .collect();
        let mut out = Vec::new();
        encode_ints(&vals, &mut out);
        assert_eq!(out[0], super::super::itag::GCD);
        assert_eq!(
            decode_ints(&mut Reader::new(&out), vals.len()).unwrap(),
            vals
        );
        // Nesting beyond what the encoder writes is refused, not followed.
        assert!(decode_ints(&mut Reader::new(&[4, 2, 4, 2, 4, 2, 0, 2]), 1).is_err());
    }

    #[test]
    fn mostly_idle_rates_use_the_sparse_column() {
        let vals: Vec<i64> = (0..720)
            .map(|i| if i % 3 == 0 { 1_000_000 + i * 977 } else { 0 })
            .collect();
        let mut out = Vec::new();
        encode_ints(&vals, &mut out);
        assert_eq!(out[0], super::super::itag::SPARSE);
        assert_eq!(
            decode_ints(&mut Reader::new(&out), vals.len()).unwrap(),
            vals
        );
    }

    #[test]
    fn timestamps_on_a_grid_cost_almost_nothing() {
        let ts: Vec<i64> = (0..720).map(|i| 1_795_608_000_000 + i * 5000).collect();
        let mut out = Vec::new();
        encode_ints(&ts, &mut out);
        assert!(out.len() < 20, "{}", out.len());
        assert_eq!(decode_ints(&mut Reader::new(&out), ts.len()).unwrap(), ts);
    }

    fn arb_block() -> impl Strategy<Value = Block> {
        (1usize..60, any::<bool>()).prop_flat_map(|(n, agg)| {
            let kind = if agg { BlockKind::Agg } else { BlockKind::Raw };
            let k = kind.columns();
            (
                proptest::collection::btree_set(any::<i64>(), n..=n),
                proptest::collection::vec(
                    (
                        proptest::collection::vec(any::<bool>(), n..=n),
                        proptest::collection::vec(
                            prop_oneof![
                                any::<f64>(),
                                (-100000i64..100000).prop_map(|i| i as f64 / 10.0),
                                Just(3.0)
                            ],
                            n * k..=n * k,
                        ),
                    ),
                    0..5,
                ),
            )
                .prop_map(move |(ts, series)| {
                    let ts: Vec<i64> = ts.into_iter().collect();
                    let series = series
                        .into_iter()
                        .enumerate()
                        .map(|(sid, (mask, vals))| {
                            let rows: Vec<u32> =
                                (0..n as u32).filter(|r| mask[*r as usize]).collect();
                            let cols = (0..k)
                                .map(|c| rows.iter().map(|r| vals[c * n + *r as usize]).collect())
                                .collect();
                            SeriesColumns {
                                sid: sid as u32 * 3,
                                rows,
                                cols,
                            }
                        })
                        .collect();
                    Block { kind, ts, series }
                })
        })
    }

    fn same_bits(a: &Block, b: &Block) -> bool {
        a.kind == b.kind
            && a.ts == b.ts
            && a.series.len() == b.series.len()
            && a.series.iter().zip(&b.series).all(|(x, y)| {
                x.sid == y.sid
                    && x.rows == y.rows
                    && x.cols.iter().zip(&y.cols).all(|(c, d)| {
                        c.len() == d.len()
                            && c.iter().zip(d).all(|(u, v)| u.to_bits() == v.to_bits())
                    })
            })
    }

    /// Aggregates of `buckets` (each the samples of one bucket) as the roll-up
    /// builds them: min, max, sum, count, last; the sum of decimals exact.
    fn aggregates(buckets: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let col = |f: &dyn Fn(&[f64]) -> f64| buckets.iter().map(|b| f(b)).collect();
        vec![
            col(&|b| b.iter().copied().fold(f64::INFINITY, f64::min)),
            col(&|b| b.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            col(&|b| match super::super::encoder::as_decimals(b) {
                Some((scale, ints)) => ints.iter().sum::<i64>() as f64 / POW10[scale as usize],
                None => b.iter().sum(),
            }),
            col(&|b| b.len() as f64),
            col(&|b| b[b.len() - 1]),
        ]
    }

    fn agg_block(series: Vec<Vec<Vec<f64>>>) -> Block {
        let n = series.iter().map(|s| s.len()).max().unwrap_or(0);
        Block {
            kind: BlockKind::Agg,
            ts: (0..n as i64)
                .map(|i| 1_795_564_800_000 + i * 60_000)
                .collect(),
            series: series
                .iter()
                .enumerate()
                .map(|(sid, b)| SeriesColumns {
                    sid: sid as u32,
                    rows: (0..b.len() as u32).collect(),
                    cols: aggregates(b),
                })
                .collect(),
        }
    }

    /// Decodes bit for bit; returns the layout of each series.
    fn round_trip_agg(block: &Block) -> Vec<u8> {
        let bytes = encode_block(block, None);
        assert_eq!(bytes[0], super::super::BLOCK_V4);
        assert!(same_bits(block, &decode_block(&bytes).unwrap()));
        let r = BlockReader::parse(&bytes).unwrap();
        (0..block.series.len())
            .map(|i| r.layout_of(i).unwrap())
            .collect()
    }

    #[test]
    fn aggregate_edge_cases_round_trip_in_the_offsets_layout() {
        let big = 9_007_199_254_740_991.0; // 2^53 - 1: the largest exact scaled integer
        let block = agg_block(vec![
            // equal min and max, and a constant series
            vec![vec![42.5; 12]; 30],
            // negative values, one decimal
            (0..30)
                .map(|i| {
                    (0..12)
                        .map(|j| -((i * 12 + j) % 97) as f64 / 10.0)
                        .collect()
                })
                .collect(),
            // a huge range inside one bucket
            vec![vec![-big, big, 0.0, 1.0]; 3],
            // a counter: large (4 TB), only increasing
            (0..30)
                .map(|i| {
                    (0..12)
                        .map(|j| 4.0e12 + (i * 12 + j) as f64 * 1e6)
                        .collect()
                })
                .collect(),
            // single-sample buckets
            (0..30).map(|i| vec![i as f64 * 0.25]).collect(),
        ]);
        // One of the integer layouts (whichever is smaller), never floats.
        assert!(
            round_trip_agg(&block)
                .iter()
                .all(|l| *l != super::super::layout::FLOATS)
        );
    }

    #[test]
    fn aggregates_that_are_not_decimals_keep_float_columns() {
        let block = agg_block(vec![
            vec![vec![0.1, 0.2, 0.30000000000000004]; 10],
            vec![vec![f64::INFINITY, 1.0]; 10],
            vec![vec![-0.0, 0.0]; 10],
            vec![vec![1e300, -1e300]; 10],
            // a counter whose sums pass 2^53
            (0..10)
                .map(|i| (0..12).map(|j| 4.0e15 + (i * 12 + j) as f64).collect())
                .collect(),
        ]);
        assert_eq!(
            round_trip_agg(&block),
            vec![super::super::layout::FLOATS; 5]
        );
    }

    #[test]
    fn offsets_layout_shrinks_a_random_walk() {
        // A minute's aggregates of a 1-decimal percentage walking every 5 s.
        let mut v = 500i64;
        let mut x = 7u64;
        let buckets: Vec<Vec<f64>> = (0..360)
            .map(|_| {
                (0..12)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        v = (v + ((x >> 33) % 121) as i64 - 60).clamp(0, 1000);
                        v as f64 / 10.0
                    })
                    .collect()
            })
            .collect();
        let mut block = agg_block(vec![buckets]);
        // Sums rounded to the values' scale, as the roll-up stores them.
        for s in &mut block.series[0].cols[2] {
            *s = (*s * 10.0).round() / 10.0;
        }
        assert_eq!(
            round_trip_agg(&block),
            vec![super::super::layout::RESIDUALS]
        );
        let v2 = encode_block(&block, None).len();
        let mut v1 = 0;
        for c in &block.series[0].cols {
            let mut out = Vec::new();
            encode_column(c, &mut out);
            v1 += out.len();
        }
        assert!(v2 * 100 < v1 * 92, "v2 {v2} bytes, v1 columns {v1} bytes");
    }

    #[test]
    fn truncated_aggregate_blocks_are_errors() {
        let block = agg_block(vec![
            (0..40)
                .map(|i| (0..12).map(|j| ((i * 7 + j * 3) % 50) as f64).collect())
                .collect(),
            vec![vec![0.5, 0.25]; 40],
        ]);
        let bytes = encode_block(&block, None);
        for len in 0..bytes.len() {
            assert!(
                decode_block(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        // A byte past the last series is outside every series' data.
        assert!(same_bits(&block, &decode_block(&longer).unwrap()));
    }

    fn arb_decimal_agg_block() -> impl Strategy<Value = Block> {
        let bucket = (0u32..4, -1_000_000i64..1_000_000, 1usize..20, any::<u64>()).prop_map(
            |(scale, base, n, seed)| {
                let p = 10f64.powi(scale as i32);
                let mut x = seed;
                (0..n)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (base + (x >> 40) as i64 % 5000 - 2500) as f64 / p
                    })
                    .collect::<Vec<f64>>()
            },
        );
        proptest::collection::vec(proptest::collection::vec(bucket, 1..40), 1..4)
            .prop_map(agg_block)
    }

    /// One aggregate row of an edge-case series: a bucket of samples
    /// (1 to 15 one- or two-decimal values), an empty bucket written as
    /// zeros with count 0, or a single sample at the edge of what is
    /// exact (±(2^53 − 1) at scale 0; as many digits at larger scales).
    fn arb_edge_row(scale: i32) -> impl Strategy<Value = [f64; 5]> {
        let p = 10f64.powi(scale);
        let big = 9_007_199_254_740_991i64 / 10i64.pow(scale as u32);
        prop_oneof![
            proptest::collection::vec(-50_000i64..50_000, 1..15).prop_map(move |ints| {
                let vals: Vec<f64> = ints.iter().map(|i| *i as f64 / p).collect();
                let sum = ints.iter().sum::<i64>() as f64 / p;
                [
                    vals.iter().copied().fold(f64::INFINITY, f64::min),
                    vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    sum,
                    vals.len() as f64,
                    vals[vals.len() - 1],
                ]
            }),
            Just([0.0, 0.0, 0.0, 0.0, 0.0]),
            prop_oneof![Just(big), Just(-big), Just(1), Just(-725),].prop_map(move |i| {
                let v = i as f64 / p;
                [v, v, v, 1.0, v]
            }),
        ]
    }

    fn arb_edge_agg_block() -> impl Strategy<Value = Block> {
        let series = (0i32..3).prop_flat_map(|scale| {
            prop_oneof![
                proptest::collection::vec(arb_edge_row(scale), 1..50),
                // all rows equal
                (arb_edge_row(scale), 1usize..50).prop_map(|(r, n)| vec![r; n]),
            ]
        });
        proptest::collection::vec(series, 1..4).prop_map(|series| {
            let n = series.iter().map(Vec::len).max().unwrap_or(0);
            Block {
                kind: BlockKind::Agg,
                ts: (0..n as i64)
                    .map(|i| 1_795_564_800_000 + i * 60_000)
                    .collect(),
                series: series
                    .iter()
                    .enumerate()
                    .map(|(sid, rows)| SeriesColumns {
                        sid: sid as u32,
                        rows: (0..rows.len() as u32).collect(),
                        cols: (0..5)
                            .map(|c| rows.iter().map(|r| r[c]).collect())
                            .collect(),
                    })
                    .collect(),
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn decimal_aggregate_blocks_round_trip(block in arb_decimal_agg_block()) {
            let bytes = encode_block(&block, None);
            prop_assert!(same_bits(&block, &decode_block(&bytes).unwrap()));
        }

        /// Every layout, forced, reads back bit for bit: one row, equal
        /// rows, empty buckets (count 0), single samples (count 1) and the
        /// largest exact values among ordinary buckets.
        #[test]
        fn edge_case_aggregates_round_trip_in_every_layout(block in arb_edge_agg_block()) {
            let best = encode_block(&block, None);
            prop_assert!(same_bits(&block, &decode_block(&best).unwrap()));
            for l in [layout::FLOATS, layout::OFFSETS, layout::RESIDUALS] {
                let bytes = super::super::encoder::encode_block_in_layout(&block, l);
                prop_assert_eq!(bytes[0], BLOCK_V4);
                prop_assert!(same_bits(&block, &decode_block(&bytes).unwrap()), "layout {}", l);
                let r = BlockReader::parse(&bytes).unwrap();
                for i in 0..block.series.len() {
                    // Integer layouts apply to every series here.
                    prop_assert_eq!(r.layout_of(i), Some(l));
                }
                prop_assert!(best.len() <= bytes.len());
            }
        }

        #[test]
        fn mutated_aggregate_blocks_never_panic(block in arb_decimal_agg_block(), pos in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = encode_block(&block, None);
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = decode_block(&bytes);
        }

        #[test]
        fn blocks_round_trip(block in arb_block(), z in any::<bool>()) {
            let bytes = encode_block(&block, z.then_some(3));
            let back = decode_block(&bytes).unwrap();
            prop_assert!(same_bits(&block, &back));
        }

        #[test]
        fn int_columns_round_trip(vals in proptest::collection::vec(prop_oneof![any::<i64>(), Just(0i64), (-5i64..5).prop_map(|v| v * 4096)], 0..300)) {
            let mut out = Vec::new();
            encode_ints(&vals, &mut out);
            prop_assert_eq!(decode_ints(&mut Reader::new(&out), vals.len()).unwrap(), vals);
        }

        /// Choosing by computed size writes exactly what encoding every
        /// candidate and keeping the smallest wrote.
        #[test]
        fn int_columns_are_encoded_as_by_trial(vals in proptest::collection::vec(prop_oneof![
            any::<i64>(),
            Just(0i64),
            (-5i64..5).prop_map(|v| v * 4096),
            (0i64..300).prop_map(|v| 1_795_564_800_000 + v * 5000),
            (-1000i64..1000),
        ], 0..400)) {
            let mut a = Vec::new();
            encode_ints(&vals, &mut a);
            let mut b = Vec::new();
            super::super::encoder::encode_ints_by_trial(&vals, &mut b);
            prop_assert_eq!(a, b);
        }

        /// The same on the shapes real columns have: walks, grids, page
        /// multiples, idle stretches.
        #[test]
        fn walks_are_encoded_as_by_trial(
            steps in proptest::collection::vec(-300i64..300, 1..700),
            start in any::<i32>(),
            factor in prop_oneof![Just(1i64), Just(4096), Just(10)],
            idle in proptest::collection::vec(any::<bool>(), 700),
        ) {
            let mut v = i64::from(start);
            let vals: Vec<i64> = steps
                .iter()
                .zip(&idle)
                .map(|(d, z)| {
                    v += d;
                    if *z { 0 } else { v * factor }
                })
                .collect();
            for vals in [&vals[..], &steps[..]] {
                let mut a = Vec::new();
                encode_ints(vals, &mut a);
                let mut b = Vec::new();
                super::super::encoder::encode_ints_by_trial(vals, &mut b);
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn block_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_block(&bytes);
        }

        #[test]
        fn column_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..2000) {
            let _ = decode_column(&bytes, n);
        }

        #[test]
        fn mutated_blocks_never_panic(block in arb_block(), pos in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = encode_block(&block, None);
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = decode_block(&bytes);
        }
    }
}
