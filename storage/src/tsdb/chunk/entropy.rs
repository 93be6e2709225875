//! Entropy-coded integer columns ([`itag::ENTROPY`]), written by aggregate
//! blocks of version 3. Version 4 writes prefix-coded columns instead
//! (`huffman.rs`, smaller and faster to read); this decoder reads the
//! version-3 blocks of a data directory, and the encoder is kept for its
//! tests.
//!
//! Bit-packing pays, for every value of a group, the width of the group's
//! widest value. Residuals of noisy series (a minute's spread of a rate that
//! walks by tens of kB/s every 5 s) are spread out, so the widest value of a
//! group of 128 is 1-2 bits wider than a typical one. This column codes
//! each value's *bit length* with a static rANS model of the column's own
//! bit-length histogram, then the bits below the value's leading one as
//! they are: the cost per value is close to the entropy of the residuals.
//!
//! ```text
//! u8      mode: 0 = values are zigzag(v); 1 = values are v - base
//! if mode 1: varint zigzag(base)
//! u8      first symbol s0 (bit lengths s0 .. s0 + k - 1 are modelled)
//! u8      k (1 to 65)
//! k ×     varint count of values with that bit length (the counts sum to n)
//! varint  rans_len
//! rans_len bytes: rANS stream of the n bit lengths (state: 4 bytes LE)
//! rest:   mantissas, LSB first: for each value of bit length s ≥ 2, its
//!         s - 1 bits below the leading one
//! ```
//!
//! The counts are scaled to frequencies summing to 2^12 by
//! [`normalize`], which encoder and decoder share, so the model costs only
//! the histogram (a byte or two per bit length present).

use super::decoder::{DecodeError, Reader};
use super::unzigzag;
#[cfg(test)]
use super::{BitWriter, bit_width, itag, put_varint, zigzag};

type Result<T> = std::result::Result<T, DecodeError>;

/// Frequencies sum to `1 << SCALE_BITS` (the decoder's lookup table has
/// that many entries).
const SCALE_BITS: u32 = 12;
const M: u32 = 1 << SCALE_BITS;
/// Lower bound of the rANS state (byte-wise renormalisation).
const RANS_L: u32 = 1 << 23;

/// The mode byte: how a value becomes the unsigned number that is coded.
mod mode {
    pub const ZIGZAG: u8 = 0;
    pub const BASE: u8 = 1;
}

/// Frequencies (summing to [`M`], each ≥ 1) for symbol counts summing to `n`.
/// Deterministic: the decoder recomputes exactly what the encoder used.
fn normalize(counts: &[u32], n: u64) -> Option<Vec<u32>> {
    if counts.is_empty() || counts.len() > 65 || n == 0 {
        return None;
    }
    let mut f: Vec<u32> = counts
        .iter()
        .map(|c| ((u64::from(*c) * u64::from(M) / n) as u32).max(1))
        .collect();
    let total: u32 = f.iter().sum();
    // Give the rounding difference to the most frequent symbol, or take
    // the excess (at most one per symbol) from the most frequent ones,
    // leaving each at least 1. M ≥ 65 symbols, so there is always room.
    let (imax, _) = f
        .iter()
        .enumerate()
        .max_by_key(|(i, v)| (**v, usize::MAX - *i))?;
    if total <= M {
        f[imax] += M - total;
    } else {
        let mut over = total - M;
        while over > 0 {
            let (i, _) = f
                .iter()
                .enumerate()
                .max_by_key(|(i, v)| (**v, usize::MAX - *i))?;
            let take = over.min(f[i] - 1);
            if take == 0 {
                return None;
            }
            f[i] -= take;
            over -= take;
        }
    }
    Some(f)
}

/// The unsigned values a mode codes.
#[cfg(test)]
fn unsigned(vals: &[i64], m: u8, base: i64) -> Vec<u64> {
    match m {
        mode::ZIGZAG => vals.iter().map(|v| zigzag(*v)).collect(),
        _ => vals.iter().map(|v| v.wrapping_sub(base) as u64).collect(),
    }
}

/// Append the entropy-coded column (tag included) for `vals`, or nothing
/// when `vals` is empty. Returns whether it wrote.
#[cfg(test)]
fn encode_mode(vals: &[i64], m: u8, out: &mut Vec<u8>) -> bool {
    let Some(base) = vals.iter().copied().min() else {
        return false;
    };
    let u = unsigned(vals, m, base);
    let syms: Vec<u8> = u.iter().map(|v| bit_width(*v) as u8).collect();
    let lo = *syms.iter().min().unwrap_or(&0);
    let hi = *syms.iter().max().unwrap_or(&0);
    let k = usize::from(hi - lo) + 1;
    let mut counts = vec![0u32; k];
    for s in &syms {
        counts[usize::from(s - lo)] += 1;
    }
    let Some(freq) = normalize(&counts, vals.len() as u64) else {
        return false;
    };
    let mut cum = vec![0u32; k + 1];
    for i in 0..k {
        cum[i + 1] = cum[i] + freq[i];
    }

    out.push(itag::ENTROPY);
    out.push(m);
    if m == mode::BASE {
        put_varint(out, zigzag(base));
    }
    out.push(lo);
    out.push(k as u8);
    for c in &counts {
        put_varint(out, u64::from(*c));
    }
    // rANS: encode backwards, the decoder reads forwards.
    let mut x = RANS_L;
    let mut emitted: Vec<u8> = Vec::with_capacity(vals.len());
    for s in syms.iter().rev() {
        let i = usize::from(s - lo);
        let (f, start) = (freq[i], cum[i]);
        let x_max = ((RANS_L >> SCALE_BITS) << 8) * f;
        while x >= x_max {
            emitted.push(x as u8);
            x >>= 8;
        }
        x = ((x / f) << SCALE_BITS) + (x % f) + start;
    }
    put_varint(out, 4 + emitted.len() as u64);
    out.extend_from_slice(&x.to_le_bytes());
    out.extend(emitted.iter().rev());
    let mut bw = BitWriter::default();
    for (v, s) in u.iter().zip(&syms) {
        if *s >= 2 {
            bw.write(*v, u32::from(*s) - 1);
        }
    }
    out.extend_from_slice(&bw.finish());
    true
}

/// The size [`encode_mode`] would write in mode `m`, estimated from the
/// bit-length histogram (the rANS stream costs the histogram's entropy,
/// give or take a few bytes) without encoding.
#[cfg(test)]
fn estimate(vals: &[i64], m: u8) -> Option<usize> {
    let base = vals.iter().copied().min()?;
    let mut counts = [0u32; 65];
    let mut mantissa = 0u64;
    for v in vals {
        let u = match m {
            mode::ZIGZAG => zigzag(*v),
            _ => v.wrapping_sub(base) as u64,
        };
        let s = bit_width(u);
        counts[s as usize] += 1;
        mantissa += u64::from(s.saturating_sub(1));
    }
    let n = vals.len() as f64;
    let (lo, hi) = (
        counts.iter().position(|c| *c > 0)?,
        counts.iter().rposition(|c| *c > 0)?,
    );
    let mut bits = 0f64;
    let mut table = 0usize;
    for c in &counts[lo..=hi] {
        table += if *c < 128 { 1 } else { 2 };
        if *c > 0 {
            bits += f64::from(*c) * (n / f64::from(*c)).log2();
        }
    }
    let header = 4 + if m == mode::BASE { 3 } else { 0 };
    Some(header + table + 6 + (bits / 8.0) as usize + mantissa.div_ceil(8) as usize)
}

/// Append the entropy-coded column for `vals` in the mode whose estimated
/// size is smaller, when that estimate is below `beat` bytes; returns
/// whether it wrote (never for an empty column).
#[cfg(test)]
pub(crate) fn encode_entropy_below(vals: &[i64], beat: usize, out: &mut Vec<u8>) -> bool {
    let zig = estimate(vals, mode::ZIGZAG);
    let base = estimate(vals, mode::BASE);
    let (m, est) = match (zig, base) {
        (Some(z), Some(b)) if b < z => (mode::BASE, b),
        (Some(z), _) => (mode::ZIGZAG, z),
        _ => return false,
    };
    est < beat && encode_mode(vals, m, out)
}

/// Append the entropy-coded column for `vals` (nothing for an empty
/// column), in the mode estimated smaller.
#[cfg(test)]
pub(crate) fn encode_entropy(vals: &[i64], out: &mut Vec<u8>) {
    encode_entropy_below(vals, usize::MAX, out);
}

/// Decode the `n` values of an entropy-coded column, its tag already read.
pub(crate) fn decode_entropy(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>> {
    if n == 0 {
        return Err(DecodeError("entropy column without values"));
    }
    let m = r.u8()?;
    let base = match m {
        mode::ZIGZAG => 0,
        mode::BASE => unzigzag(r.varint()?),
        _ => return Err(DecodeError("unknown entropy column mode")),
    };
    let lo = r.u8()?;
    let k = usize::from(r.u8()?);
    if k == 0 || k > 65 || usize::from(lo) + k > 65 {
        return Err(DecodeError("entropy column symbol range out of bounds"));
    }
    let mut counts = Vec::with_capacity(k);
    let mut total = 0u64;
    for _ in 0..k {
        let c = r.len(n)?;
        total += c as u64;
        counts.push(c as u32);
    }
    if total != n as u64 {
        return Err(DecodeError(
            "entropy column counts disagree with its length",
        ));
    }
    let freq = normalize(&counts, total).ok_or(DecodeError("entropy column model invalid"))?;
    let mut cum = [0u32; 66];
    for i in 0..k {
        cum[i + 1] = cum[i] + freq[i];
    }
    let len = r.len(r.remaining())?;
    let stream = r.bytes(len)?;
    if stream.len() < 4 {
        return Err(DecodeError("truncated rANS stream"));
    }
    let mut slot_sym = [0u8; M as usize];
    for i in 0..k {
        slot_sym[cum[i] as usize..cum[i + 1] as usize].fill(i as u8);
    }
    let mut x = u32::from_le_bytes([stream[0], stream[1], stream[2], stream[3]]);
    let mut pos = 4;
    // The mantissas follow the stream; they are read in the same loop (the
    // rANS state is a serial chain, the bit reads can overlap it), and
    // their length is known once every bit length is.
    let mut bits = Bits {
        data: r.peek_rest(),
        pos: 0,
        acc: 0,
        n: 0,
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let slot = x & (M - 1);
        let i = usize::from(slot_sym[slot as usize]);
        x = freq[i] * (x >> SCALE_BITS) + slot - cum[i];
        while x < RANS_L {
            let b = *stream
                .get(pos)
                .ok_or(DecodeError("truncated rANS stream"))?;
            pos += 1;
            x = (x << 8) | u32::from(b);
        }
        let s = u32::from(lo) + i as u32;
        let u = if s < 2 {
            u64::from(s)
        } else {
            (1u64 << (s - 1)) | bits.read(s - 1)?
        };
        out.push(match m {
            mode::ZIGZAG => unzigzag(u),
            _ => base.wrapping_add(u as i64),
        });
    }
    if x != RANS_L || pos != stream.len() {
        return Err(DecodeError("rANS stream does not end where it began"));
    }
    r.skip(bits.used())?;
    Ok(out)
}

/// LSB-first bit reader over the mantissas, refilled a byte at a time, so
/// that the bytes it consumed are exactly those holding the bits it read.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
}

impl Bits<'_> {
    #[inline(always)]
    fn read(&mut self, w: u32) -> Result<u64> {
        if w > 56 {
            return self.read_wide(w);
        }
        if self.n < w {
            self.refill(w)?;
        }
        let v = self.acc & ((1u64 << w) - 1);
        self.acc >>= w;
        self.n -= w;
        Ok(v)
    }

    /// 57 to 64 bits: two reads.
    #[cold]
    fn read_wide(&mut self, w: u32) -> Result<u64> {
        let lo = self.read(32)?;
        Ok(lo | (self.read(w - 32)? << 32))
    }

    /// Load bytes until at least `w` (≤ 56) bits are held.
    #[inline]
    fn refill(&mut self, w: u32) -> Result<()> {
        if let Some(b) = self.data.get(self.pos..self.pos + 8) {
            // Whole bytes up to 56 bits held, in one load.
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let take = (63 - self.n) / 8;
            let word = u64::from_le_bytes(a) & ((1u64 << (8 * take)) - 1);
            self.acc |= word << self.n;
            self.n += 8 * take;
            self.pos += take as usize;
            return Ok(());
        }
        while self.n < w {
            let b = *self
                .data
                .get(self.pos)
                .ok_or(DecodeError("truncated entropy column mantissas"))?;
            self.pos += 1;
            self.acc |= u64::from(b) << self.n;
            self.n += 8;
        }
        Ok(())
    }

    /// Bytes that hold the bits read so far (bytes loaded ahead are not
    /// counted).
    fn used(&self) -> usize {
        self.pos - (self.n / 8) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::super::decoder::decode_ints;
    use super::*;
    use proptest::prelude::*;

    fn round_trip(vals: &[i64]) -> usize {
        let mut out = Vec::new();
        encode_entropy(vals, &mut out);
        let back = decode_ints(&mut Reader::new(&out), vals.len()).unwrap();
        assert_eq!(back, vals);
        out.len()
    }

    #[test]
    fn extremes_round_trip() {
        round_trip(&[i64::MIN, i64::MAX, 0, -1, 1]);
        round_trip(&[0; 10]);
        round_trip(&[i64::MAX; 3]);
        round_trip(&[i64::MIN]);
    }

    #[test]
    fn spread_out_residuals_cost_less_than_bit_packing() {
        let vals = super::super::minute_residuals();
        let entropy = round_trip(&vals);
        let mut packed = Vec::new();
        super::super::encoder::encode_ints(&vals, &mut packed);
        assert!(
            entropy * 100 < packed.len() * 93,
            "{entropy} vs {}",
            packed.len()
        );
    }

    proptest! {
        #[test]
        fn columns_round_trip(vals in proptest::collection::vec(prop_oneof![
            any::<i64>(),
            -1000i64..1000,
            Just(0i64),
        ], 1..500)) {
            round_trip(&vals);
        }

        #[test]
        fn truncated_columns_are_errors(vals in proptest::collection::vec(-100_000i64..100_000, 1..300)) {
            let mut out = Vec::new();
            encode_entropy(&vals, &mut out);
            for len in 0..out.len() {
                prop_assert!(decode_ints(&mut Reader::new(&out[..len]), vals.len()).is_err());
            }
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 1usize..2000) {
            let mut data = vec![itag::ENTROPY];
            data.extend_from_slice(&bytes);
            let _ = decode_ints(&mut Reader::new(&data), n);
        }
    }
}
