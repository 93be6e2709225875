//! Prefix-coded integer columns ([`itag::HUFFMAN`]), written by aggregate
//! blocks of version 4.
//!
//! Like the entropy-coded column of version 3 (`entropy.rs`), each value
//! is its *bit length*, coded with the column's own model, then the bits
//! below its leading one as they are. The model is a canonical prefix
//! (Huffman) code instead of a rANS table: its description is a 4-bit code
//! length per bit length instead of a varint count (a 360-value column
//! saves 8-12 bytes of table and the 4-byte rANS state, and loses a few
//! hundredths of a bit per value to whole-bit codes), and the codes and
//! mantissas share one bit stream that is read with one table lookup per
//! value, about as fast as bit-unpacking.
//!
//! ```text
//! u8      mode: 0 = values are zigzag(v); 1 = values are v - base
//! if mode 1: varint zigzag(base)
//! u8      first symbol s0 (bit lengths s0 .. s0 + k - 1 are described)
//! u8      k (1 to 65; s0 + k ≤ 65)
//! if k ≥ 2: ceil(k / 2) bytes, the code length (1 to 12, 0 = absent) of
//!         each bit length s0 + i in 4 bits, low nibble first; the code is
//!         complete (Kraft sum exactly 1)
//! rest:   bit stream, LSB first: for each value its code (canonical: codes
//!         of one length are consecutive in symbol order, shorter codes
//!         first; written first bit at the lowest position), then, for bit
//!         length s ≥ 2, the s - 1 bits below the leading one. With k = 1
//!         the codes take no bits. The stream ends at the next whole byte.
//! ```

use super::decoder::{DecodeError, Reader};
use super::{BitWriter, bit_width, itag, put_varint, unzigzag, zigzag};

type Result<T> = std::result::Result<T, DecodeError>;

/// Longest code: the decoder's table has at most `1 << MAX_CODE` entries.
const MAX_CODE: u32 = 12;

/// The mode byte: how a value becomes the unsigned number that is coded.
mod mode {
    pub const ZIGZAG: u8 = 0;
    pub const BASE: u8 = 1;
}

/// Code lengths (0 for an absent symbol) of a Huffman code for `counts`,
/// each at most [`MAX_CODE`]; at least two symbols must be present. When
/// the optimal code is too deep the counts are flattened (halved, rounding
/// up, so every present symbol stays present) until it fits; with at most
/// 65 symbols equal counts give a depth of 7, so this ends.
fn code_lengths(counts: &[u64]) -> Vec<u8> {
    let mut c: Vec<u64> = counts.to_vec();
    loop {
        let lens = huffman(&c);
        if lens.iter().all(|l| u32::from(*l) <= MAX_CODE) {
            return lens;
        }
        for v in &mut c {
            if *v > 0 {
                *v = v.div_ceil(2);
            }
        }
    }
}

/// Plain Huffman code lengths (no limit) by repeatedly joining the two
/// lightest trees; ties are broken by position, so the result is
/// deterministic.
fn huffman(counts: &[u64]) -> Vec<u8> {
    let mut lens = vec![0u8; counts.len()];
    // (weight, order, members)
    let mut trees: Vec<(u64, usize, Vec<usize>)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (*c, i, vec![i]))
        .collect();
    let mut order = counts.len();
    while trees.len() > 1 {
        trees.sort_by_key(|t| std::cmp::Reverse((t.0, t.1)));
        let (w1, _, m1) = trees.pop().expect("two trees: the loop condition");
        let (w2, _, m2) = trees.pop().expect("two trees: the loop condition");
        let mut m = m1;
        m.extend(m2);
        for i in &m {
            lens[*i] += 1;
        }
        trees.push((w1 + w2, order, m));
        order += 1;
    }
    lens
}

/// Canonical codes for `lens` (as DEFLATE assigns them, RFC 1951 3.2.2:
/// codes of one length are consecutive in symbol order, shorter codes
/// first), each with its bits reversed so that the first bit sits at the
/// lowest position of an LSB-first stream. Lengths are at most 15.
fn canonical(lens: &[u8]) -> [u32; 65] {
    let mut count = [0u32; 16];
    for l in lens {
        count[usize::from(*l & 15)] += 1;
    }
    count[0] = 0;
    let mut next = [0u32; 16];
    let mut code = 0u32;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    let mut codes = [0u32; 65];
    for (i, l) in lens.iter().enumerate().take(65) {
        let l = usize::from(*l & 15);
        if l > 0 {
            codes[i] = next[l].reverse_bits() >> (32 - l);
            next[l] += 1;
        }
    }
    codes
}

/// The unsigned values a mode codes.
fn unsigned(v: i64, m: u8, base: i64) -> u64 {
    match m {
        mode::ZIGZAG => zigzag(v),
        _ => v.wrapping_sub(base) as u64,
    }
}

/// What a column costs in mode `m`: its bit-length histogram from `lo`,
/// its code lengths and its size in bytes.
struct Plan {
    m: u8,
    base: i64,
    lo: u8,
    counts: Vec<u64>,
    lens: Vec<u8>,
    bytes: usize,
}

fn plan(vals: &[i64], m: u8) -> Option<Plan> {
    let base = vals.iter().copied().min()?;
    let mut hist = [0u64; 65];
    for v in vals {
        hist[bit_width(unsigned(*v, m, base)) as usize] += 1;
    }
    let lo = hist.iter().position(|c| *c > 0)?;
    let hi = hist.iter().rposition(|c| *c > 0)?;
    let counts = hist[lo..=hi].to_vec();
    let k = counts.len();
    let lens = if k == 1 {
        vec![0]
    } else {
        code_lengths(&counts)
    };
    let mut bits = 0u64;
    for (i, c) in counts.iter().enumerate() {
        let s = (lo + i) as u64;
        bits += c * (u64::from(lens[i]) + s.saturating_sub(1));
    }
    let mut header = 4 + if k >= 2 { k.div_ceil(2) } else { 0 };
    if m == mode::BASE {
        header += super::encoder::varint_len(zigzag(base));
    }
    Some(Plan {
        m,
        base,
        lo: lo as u8,
        counts,
        lens,
        bytes: header + bits.div_ceil(8) as usize,
    })
}

/// The smaller of the two modes' plans (ties keep zigzag).
fn best_plan(vals: &[i64]) -> Option<Plan> {
    let z = plan(vals, mode::ZIGZAG)?;
    let b = plan(vals, mode::BASE)?;
    Some(if b.bytes < z.bytes { b } else { z })
}

/// The bytes [`encode_huffman`] would write for `vals` (`None` for an
/// empty column), computed without writing.
pub(crate) fn huffman_len(vals: &[i64]) -> Option<usize> {
    best_plan(vals).map(|p| p.bytes)
}

/// Append the prefix-coded column (tag included) for `vals` in the smaller
/// mode; nothing for an empty column. Returns whether it wrote.
pub(crate) fn encode_huffman(vals: &[i64], out: &mut Vec<u8>) -> bool {
    let Some(p) = best_plan(vals) else {
        return false;
    };
    let start = out.len();
    out.push(itag::HUFFMAN);
    out.push(p.m);
    if p.m == mode::BASE {
        put_varint(out, zigzag(p.base));
    }
    out.push(p.lo);
    let k = p.counts.len();
    out.push(k as u8);
    if k >= 2 {
        for pair in p.lens.chunks(2) {
            out.push(pair[0] | pair.get(1).map_or(0, |l| l << 4));
        }
    }
    let codes = canonical(&p.lens);
    let mut bw = BitWriter::default();
    bw.buf.reserve(p.bytes);
    for v in vals {
        let u = unsigned(*v, p.m, p.base);
        let s = bit_width(u);
        let i = s as usize - usize::from(p.lo);
        bw.write(u64::from(codes[i]), u32::from(p.lens[i]));
        if s >= 2 {
            bw.write(u, s - 1);
        }
    }
    out.extend_from_slice(&bw.finish());
    debug_assert_eq!(out.len() - start, p.bytes, "the plan's size is exact");
    true
}

/// Decode the `n` values of a prefix-coded column, its tag already read.
pub(crate) fn decode_huffman(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>> {
    if n == 0 {
        return Err(DecodeError("prefix-coded column without values"));
    }
    let m = r.u8()?;
    let base = match m {
        mode::ZIGZAG => 0,
        mode::BASE => unzigzag(r.varint()?),
        _ => return Err(DecodeError("unknown prefix-coded column mode")),
    };
    let lo = u32::from(r.u8()?);
    let k = usize::from(r.u8()?);
    if k == 0 || lo as usize + k > 65 {
        return Err(DecodeError(
            "prefix-coded column symbol range out of bounds",
        ));
    }
    // The code length of each bit length lo + i (0: absent).
    let mut lens = [0u8; 65];
    let mut depth = 0u32;
    if k >= 2 {
        let packed = r.bytes(k.div_ceil(2))?;
        for i in 0..k {
            lens[i] = (packed[i / 2] >> (4 * (i % 2))) & 15;
        }
        if k % 2 == 1 && packed[k / 2] >> 4 != 0 {
            return Err(DecodeError("prefix-coded column: stray code length"));
        }
        depth = u32::from(*lens[..k].iter().max().unwrap_or(&0));
        if depth == 0 || depth > MAX_CODE {
            return Err(DecodeError("prefix-coded column: code length out of range"));
        }
        let kraft: u32 = lens[..k]
            .iter()
            .filter(|l| **l > 0)
            .map(|l| 1u32 << (MAX_CODE - u32::from(*l)))
            .sum();
        if kraft != 1 << MAX_CODE {
            return Err(DecodeError("prefix-coded column: incomplete code"));
        }
    }
    // Per symbol: its code length, the width of its mantissa and the value
    // of its leading bit (bit length s: 1 << (s - 1); 0 and 1 stand alone).
    let mut clen = [0u32; 65];
    let mut width = [0u32; 65];
    let mut lead = [0u64; 65];
    for i in 0..k {
        let s = lo + i as u32;
        clen[i] = u32::from(lens[i]);
        width[i] = s.saturating_sub(1);
        lead[i] = if s < 2 { u64::from(s) } else { 1 << (s - 1) };
    }
    // Decoding table: the low `depth` bits of the stream → symbol.
    let mut small = [0u8; 256];
    let mut big = Vec::new();
    let table: &mut [u8] = if depth <= 8 {
        &mut small[..1 << depth]
    } else {
        big.resize(1 << depth, 0);
        &mut big
    };
    if k >= 2 {
        let codes = canonical(&lens[..k]);
        for i in 0..k {
            let l = clen[i];
            if l == 0 {
                continue;
            }
            let mut j = codes[i] as usize;
            while j < table.len() {
                table[j] = i as u8;
                j += 1 << l;
            }
        }
    }
    let table: &[u8] = table;
    let mask = (1u64 << depth) - 1;
    let mut bits = BitIn {
        data: r.peek_rest(),
        pos: 0,
        acc: 0,
        n: 0,
    };
    let mut out = vec![0i64; n];
    // Bit lengths up to 45: code (≤ 12 bits) and mantissa (≤ 44 bits) lie
    // in the > 56 bits one refill holds.
    let fast = lo as usize + k <= 46;
    for o in out.iter_mut() {
        if bits.n <= 56 {
            bits.refill();
        }
        let i = usize::from(table[(bits.acc & mask) as usize]);
        let (l, w) = (clen[i], width[i]);
        bits.acc >>= l;
        bits.n -= l;
        let mantissa = if fast {
            let v = bits.acc & ((1u64 << w) - 1);
            bits.acc >>= w;
            bits.n -= w;
            v
        } else {
            bits.read(w)
        };
        *o = (lead[i] | mantissa) as i64;
    }
    match m {
        mode::ZIGZAG => out.iter_mut().for_each(|v| *v = unzigzag(*v as u64)),
        _ => out.iter_mut().for_each(|v| *v = base.wrapping_add(*v)),
    }
    let used = bits.used_bits().div_ceil(8);
    if used > bits.data.len() {
        return Err(DecodeError("truncated prefix-coded column"));
    }
    r.skip(used)?;
    Ok(out)
}

/// LSB-first bit reader that reads zeros past the end of its bytes; the
/// caller checks afterwards that no bit it used lay there.
struct BitIn<'a> {
    data: &'a [u8],
    /// Next byte to load (may pass the end: zeros).
    pos: usize,
    acc: u64,
    n: u32,
}

impl BitIn<'_> {
    /// Load bytes until more than 56 bits are held.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(b) = self.data.get(self.pos..self.pos + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let take = (63 - self.n) / 8;
            let word = u64::from_le_bytes(a) & ((1u64 << (8 * take)) - 1);
            self.acc |= word << self.n;
            self.n += 8 * take;
            self.pos += take as usize;
            return;
        }
        while self.n <= 56 {
            let b = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            self.acc |= u64::from(b) << self.n;
            self.n += 8;
        }
    }

    #[inline(always)]
    fn read(&mut self, w: u32) -> u64 {
        if w > 56 {
            let lo = self.read(32);
            return lo | (self.read(w - 32) << 32);
        }
        if self.n < w {
            self.refill();
        }
        let v = self.acc & ((1u64 << w) - 1);
        self.acc >>= w;
        self.n -= w;
        v
    }

    /// Bits taken from the stream so far.
    fn used_bits(&self) -> usize {
        self.pos * 8 - self.n as usize
    }
}

#[cfg(test)]
mod tests {
    use super::super::decoder::decode_ints;
    use super::*;
    use proptest::prelude::*;

    fn round_trip(vals: &[i64]) -> usize {
        let mut out = Vec::new();
        assert!(encode_huffman(vals, &mut out));
        assert_eq!(Some(out.len()), huffman_len(vals));
        // A column is followed by others: the decoder must stop at its end.
        out.push(0xAB);
        let mut r = Reader::new(&out);
        let back = decode_ints(&mut r, vals.len()).unwrap();
        assert_eq!(back, vals);
        assert_eq!(r.u8().unwrap(), 0xAB, "the column ends where it says");
        out.len() - 1
    }

    #[test]
    fn edge_columns_round_trip() {
        round_trip(&[i64::MIN, i64::MAX, 0, -1, 1]);
        round_trip(&[0; 10]);
        round_trip(&[i64::MAX; 3]);
        round_trip(&[i64::MIN]);
        round_trip(&[7]);
        round_trip(&[0, 1]);
        round_trip(&(0..64).map(|i| 1i64 << i).collect::<Vec<_>>());
        round_trip(
            &(0..64)
                .map(|i| (1i64 << i).wrapping_neg())
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn skewed_histograms_stay_within_the_longest_code() {
        // Fibonacci counts make the deepest plain Huffman trees.
        let mut vals = Vec::new();
        let (mut a, mut b) = (1usize, 1usize);
        for s in 0..25 {
            vals.extend(std::iter::repeat_n(1i64 << s, a));
            (a, b) = (b, a + b);
        }
        round_trip(&vals);
    }

    #[test]
    fn spread_out_residuals_cost_less_than_bit_packing_and_rans() {
        let vals = super::super::minute_residuals();
        let coded = round_trip(&vals);
        let mut packed = Vec::new();
        super::super::encoder::encode_ints(&vals, &mut packed);
        let mut rans = Vec::new();
        super::super::entropy::encode_entropy(&vals, &mut rans);
        assert!(
            coded * 100 < packed.len() * 93,
            "{coded} vs {}",
            packed.len()
        );
        assert!(coded < rans.len(), "{coded} vs rANS {}", rans.len());
    }

    proptest! {
        #[test]
        fn columns_round_trip(vals in proptest::collection::vec(prop_oneof![
            any::<i64>(),
            -1000i64..1000,
            Just(0i64),
            Just(i64::MIN),
            Just(i64::MAX),
        ], 1..500)) {
            round_trip(&vals);
        }

        #[test]
        fn truncated_columns_are_errors(vals in proptest::collection::vec(-100_000i64..100_000, 1..300)) {
            let mut out = Vec::new();
            encode_huffman(&vals, &mut out);
            for len in 0..out.len() {
                prop_assert!(decode_ints(&mut Reader::new(&out[..len]), vals.len()).is_err());
            }
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 1usize..2000) {
            let mut data = vec![itag::HUFFMAN];
            data.extend_from_slice(&bytes);
            let _ = decode_ints(&mut Reader::new(&data), n);
        }
    }
}
