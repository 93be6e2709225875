//! Encoders: integer and float columns, and whole blocks.
//!
//! Every column is encoded in each applicable way and the smallest wins, so a
//! constant column costs 9 bytes, a one-decimal percentage a few bits per
//! value, and a full-precision float no more than Gorilla or raw bytes.

use super::{
    BLOCK_V1, BLOCK_V4, BitWriter, Block, BlockKind, FLAG_ZSTD, GROUP, bit_width, itag, layout,
    put_varint, sum_mode, tag, zigzag,
};

/// Largest decimal scale tried (values with more than 9 decimals are floats).
pub const MAX_SCALE: u8 = 9;
/// Scaled integers must stay exactly representable in an f64.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

pub(crate) const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Append `vals` bit-packed in groups of [`GROUP`]: per group one width byte,
/// then the values at that width, LSB first.
fn pack_groups(vals: &[u64], out: &mut Vec<u8>) {
    for g in vals.chunks(GROUP) {
        let w = g.iter().map(|v| bit_width(*v)).max().unwrap_or(0);
        out.push(w as u8);
        if w == 0 {
            continue;
        }
        let mut bw = BitWriter::default();
        bw.buf.reserve(g.len() * w as usize / 8 + 1);
        for v in g {
            bw.write(*v, w);
        }
        out.extend_from_slice(&bw.finish());
    }
}

fn encode_for(vals: &[i64], out: &mut Vec<u8>) {
    out.push(itag::FOR);
    let mut offs = Vec::with_capacity(GROUP);
    for g in vals.chunks(GROUP) {
        let min = g.iter().copied().min().unwrap_or(0);
        put_varint(out, zigzag(min));
        offs.clear();
        offs.extend(g.iter().map(|v| v.wrapping_sub(min) as u64));
        pack_groups(&offs, out);
    }
}

fn encode_delta(vals: &[i64], out: &mut Vec<u8>) {
    out.push(itag::DELTA);
    put_varint(out, zigzag(vals[0]));
    let d: Vec<u64> = vals
        .windows(2)
        .map(|w| zigzag(w[1].wrapping_sub(w[0])))
        .collect();
    pack_groups(&d, out);
}

fn encode_dod(vals: &[i64], out: &mut Vec<u8>) {
    out.push(itag::DOD);
    put_varint(out, zigzag(vals[0]));
    if vals.len() < 2 {
        return;
    }
    let first_delta = vals[1].wrapping_sub(vals[0]);
    put_varint(out, zigzag(first_delta));
    let d: Vec<u64> = vals
        .windows(3)
        .map(|w| {
            let d1 = w[1].wrapping_sub(w[0]);
            let d2 = w[2].wrapping_sub(w[1]);
            zigzag(d2.wrapping_sub(d1))
        })
        .collect();
    pack_groups(&d, out);
}

/// Bytes of a varint.
pub(crate) fn varint_len(v: u64) -> usize {
    (bit_width(v).max(1) as usize).div_ceil(7)
}

/// Bytes [`pack_groups`] writes for these values.
fn packed_len(vals: impl Iterator<Item = u64>) -> usize {
    let (mut len, mut count, mut or) = (0usize, 0usize, 0u64);
    for v in vals {
        or |= v;
        count += 1;
        if count == GROUP {
            len += 1 + (count * bit_width(or) as usize).div_ceil(8);
            (count, or) = (0, 0);
        }
    }
    if count > 0 {
        len += 1 + (count * bit_width(or) as usize).div_ceil(8);
    }
    len
}

fn dod_len(vals: &[i64]) -> usize {
    let mut len = 1 + varint_len(zigzag(vals[0]));
    if vals.len() >= 2 {
        len += varint_len(zigzag(vals[1].wrapping_sub(vals[0])));
        len += packed_len(vals.windows(3).map(|w| {
            let d1 = w[1].wrapping_sub(w[0]);
            let d2 = w[2].wrapping_sub(w[1]);
            zigzag(d2.wrapping_sub(d1))
        }));
    }
    len
}

fn delta_len(vals: &[i64]) -> usize {
    1 + varint_len(zigzag(vals[0]))
        + packed_len(vals.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0]))))
}

fn for_len(vals: &[i64]) -> usize {
    1 + vals
        .chunks(GROUP)
        .map(|g| {
            let min = g.iter().copied().min().unwrap_or(0);
            varint_len(zigzag(min)) + packed_len(g.iter().map(|v| v.wrapping_sub(min) as u64))
        })
        .sum::<usize>()
}

/// The integer encodings, as [`encode_ints`] chooses among them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IntsChoice {
    Const,
    Dod,
    Delta,
    For,
    Sparse,
    Gcd(u64),
}

/// The encoding [`encode_ints`] writes for `vals` and its length in bytes,
/// computed without writing it: the candidates' sizes follow from their
/// group widths alone, so only the winner is ever encoded.
fn choose_ints(vals: &[i64]) -> (IntsChoice, usize) {
    let Some(first) = vals.first() else {
        return (IntsChoice::Const, 2);
    };
    if vals.iter().all(|v| v == first) {
        return (IntsChoice::Const, 1 + varint_len(zigzag(*first)));
    }
    // Ties keep the earlier: delta-of-delta, delta, frame of reference.
    let mut best = (IntsChoice::Dod, dod_len(vals));
    for cand in [
        (IntsChoice::Delta, delta_len(vals)),
        (IntsChoice::For, for_len(vals)),
    ] {
        if cand.1 < best.1 {
            best = cand;
        }
    }
    let zeros = vals.iter().filter(|v| **v == 0).count();
    if zeros * 4 >= vals.len() {
        // The non-zero values have no zeros, so the inner column never
        // takes this branch again.
        let nonzero: Vec<i64> = vals.iter().copied().filter(|v| *v != 0).collect();
        let len = 1 + vals.len().div_ceil(8) + choose_ints(&nonzero).1;
        if len < best.1 {
            best = (IntsChoice::Sparse, len);
        }
    }
    let g = common_factor(vals);
    if g > 1 && g <= i64::MAX as u64 {
        // Exact: every value is a multiple of g (and the quotients have gcd 1,
        // so the inner column never takes this branch again).
        let scaled: Vec<i64> = vals.iter().map(|v| v / g as i64).collect();
        let len = 1 + varint_len(g) + choose_ints(&scaled).1;
        if len < best.1 {
            best = (IntsChoice::Gcd(g), len);
        }
    }
    best
}

/// Encode an integer column (its length is known to the reader) in the
/// smallest of constant, frame-of-reference, delta, delta-of-delta, sparse
/// and common factor.
pub fn encode_ints(vals: &[i64], out: &mut Vec<u8>) {
    let (choice, _) = choose_ints(vals);
    match choice {
        IntsChoice::Const => {
            out.push(itag::CONST);
            put_varint(out, zigzag(vals.first().copied().unwrap_or(0)));
        }
        IntsChoice::Dod => encode_dod(vals, out),
        IntsChoice::Delta => encode_delta(vals, out),
        IntsChoice::For => encode_for(vals, out),
        IntsChoice::Sparse => {
            let mut bitmap = vec![0u8; vals.len().div_ceil(8)];
            let mut nonzero = Vec::with_capacity(vals.len());
            for (i, v) in vals.iter().enumerate() {
                if *v != 0 {
                    bitmap[i / 8] |= 1 << (i % 8);
                    nonzero.push(*v);
                }
            }
            out.push(itag::SPARSE);
            out.extend_from_slice(&bitmap);
            encode_ints(&nonzero, out);
        }
        IntsChoice::Gcd(g) => {
            let scaled: Vec<i64> = vals.iter().map(|v| v / g as i64).collect();
            out.push(itag::GCD);
            put_varint(out, g);
            encode_ints(&scaled, out);
        }
    }
}

/// [`encode_ints`] as it was first written: every candidate encoded, the
/// smallest kept. The tests hold the size-first choice to its bytes.
#[cfg(test)]
pub(crate) fn encode_ints_by_trial(vals: &[i64], out: &mut Vec<u8>) {
    let Some(first) = vals.first() else {
        out.push(itag::CONST);
        put_varint(out, 0);
        return;
    };
    if vals.iter().all(|v| v == first) {
        out.push(itag::CONST);
        put_varint(out, zigzag(*first));
        return;
    }
    let mut best: Vec<u8> = Vec::new();
    let mut cand = Vec::with_capacity(vals.len() * 2);
    for f in [encode_dod, encode_delta, encode_for] {
        cand.clear();
        f(vals, &mut cand);
        if best.is_empty() || cand.len() < best.len() {
            std::mem::swap(&mut best, &mut cand);
        }
    }
    let zeros = vals.iter().filter(|v| **v == 0).count();
    if zeros * 4 >= vals.len() {
        // The non-zero values have no zeros, so the inner column never
        // takes this branch again.
        let mut bitmap = vec![0u8; vals.len().div_ceil(8)];
        let mut nonzero = Vec::with_capacity(vals.len() - zeros);
        for (i, v) in vals.iter().enumerate() {
            if *v != 0 {
                bitmap[i / 8] |= 1 << (i % 8);
                nonzero.push(*v);
            }
        }
        cand.clear();
        cand.push(itag::SPARSE);
        cand.extend_from_slice(&bitmap);
        encode_ints_by_trial(&nonzero, &mut cand);
        if cand.len() < best.len() {
            std::mem::swap(&mut best, &mut cand);
        }
    }
    let g = vals.iter().fold(0u64, |g, v| gcd(g, v.unsigned_abs()));
    if g > 1 && g <= i64::MAX as u64 {
        // Exact: every value is a multiple of g (and the quotients have gcd 1,
        // so the inner column never takes this branch again).
        let scaled: Vec<i64> = vals.iter().map(|v| v / g as i64).collect();
        cand.clear();
        cand.push(itag::GCD);
        put_varint(&mut cand, g);
        encode_ints_by_trial(&scaled, &mut cand);
        if cand.len() < best.len() {
            best = cand;
        }
    }
    out.extend_from_slice(&best);
}

/// The greatest common divisor of the values' magnitudes; it stops at the
/// first value that brings it to 1 (most columns, after a few values).
fn common_factor(vals: &[i64]) -> u64 {
    let mut g = 0u64;
    for v in vals {
        g = gcd(g, v.unsigned_abs());
        if g == 1 {
            break;
        }
    }
    g
}

/// Greatest common divisor (binary); gcd(0, x) = x.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// The smallest scale at which every value is an exact decimal, with the
/// scaled integers; `None` when some value is not (NaN, ±inf, -0.0, too many
/// decimals or too large).
pub fn as_decimals(vals: &[f64]) -> Option<(u8, Vec<i64>)> {
    let exact = |v: f64, s: u8| -> Option<i64> {
        let p = POW10[s as usize];
        let r = (v * p).round();
        if r.abs() >= MAX_EXACT {
            return None;
        }
        // Compare what the decoder will compute (this also refuses -0.0).
        let i = r as i64;
        ((i as f64 / p).to_bits() == v.to_bits()).then_some(i)
    };
    let mut scale = 0u8;
    for v in vals {
        if !v.is_finite() {
            return None;
        }
        while exact(*v, scale).is_none() {
            scale += 1;
            if scale > MAX_SCALE {
                return None;
            }
        }
    }
    // A value exact at scale s is exact at every larger scale (same rational,
    // same correctly rounded quotient) as long as the integers stay < 2^53,
    // which `exact` checks again here.
    vals.iter()
        .map(|v| exact(*v, scale))
        .collect::<Option<Vec<i64>>>()
        .map(|i| (scale, i))
}

fn encode_gorilla(vals: &[f64], out: &mut Vec<u8>) {
    out.push(tag::GORILLA);
    let mut bw = BitWriter::default();
    let mut prev = vals[0].to_bits();
    bw.write(prev, 64);
    // (leading, trailing) of the current window, if any.
    let mut window: Option<(u32, u32)> = None;
    for v in &vals[1..] {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            bw.write(0, 1);
            continue;
        }
        bw.write(1, 1);
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        match window {
            Some((pl, pt)) if lead >= pl && trail >= pt => {
                bw.write(0, 1);
                bw.write(x >> pt, 64 - pl - pt);
            }
            _ => {
                bw.write(1, 1);
                let sig = 64 - lead - trail;
                bw.write(u64::from(lead), 5);
                bw.write(u64::from(sig - 1), 6);
                bw.write(x >> trail, sig);
                window = Some((lead, trail));
            }
        }
    }
    out.extend_from_slice(&bw.finish());
}

/// Encode a float column (its length is known to the reader), choosing the
/// smallest of constant, decimal, Gorilla and raw.
pub fn encode_column(vals: &[f64], out: &mut Vec<u8>) {
    let Some(first) = vals.first() else {
        out.push(tag::RAW);
        return;
    };
    if vals.iter().all(|v| v.to_bits() == first.to_bits()) {
        out.push(tag::CONST);
        out.extend_from_slice(&first.to_bits().to_le_bytes());
        return;
    }
    let mut best = Vec::new();
    if let Some((scale, ints)) = as_decimals(vals) {
        best.push(tag::DECIMAL);
        best.push(scale);
        encode_ints(&ints, &mut best);
    }
    // Gorilla only pays when decimals did not already reach ~1 byte/value.
    if best.is_empty() || best.len() > vals.len() {
        let mut g = Vec::new();
        encode_gorilla(vals, &mut g);
        if best.is_empty() || g.len() < best.len() {
            best = g;
        }
    }
    if best.len() > 1 + vals.len() * 8 {
        best.clear();
        best.push(tag::RAW);
        for v in vals {
            best.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    out.extend_from_slice(&best);
}

/// An integer column of a version-4 aggregate block: the smaller of
/// [`encode_ints`] and the prefix-coded column (of the values, or of their
/// quotients by a common factor). Sizes are compared before anything is
/// written.
pub(crate) fn encode_ints_v4(vals: &[i64], out: &mut Vec<u8>) {
    use super::huffman::{encode_huffman, huffman_len};
    let (_, packed) = choose_ints(vals);
    // A column of a few values or of a few bytes cannot gain from a code.
    if vals.len() >= 8 && packed > 6 {
        let coded = huffman_len(vals).unwrap_or(usize::MAX);
        let g = common_factor(vals);
        let factored = (g > 1 && g <= i64::MAX as u64).then(|| {
            let scaled: Vec<i64> = vals.iter().map(|v| v / g as i64).collect();
            let len = 1 + varint_len(g) + huffman_len(&scaled).unwrap_or(usize::MAX - 16);
            (scaled, len)
        });
        match factored {
            Some((scaled, len)) if len < coded && len < packed => {
                out.push(itag::GCD);
                put_varint(out, g);
                encode_huffman(&scaled, out);
                return;
            }
            _ if coded < packed => {
                encode_huffman(vals, out);
                return;
            }
            _ => {}
        }
    }
    encode_ints(vals, out);
}

/// The columns of one aggregate series (min, max, sum, count, last) in the
/// smallest of the version-4 layouts (those of version 3).
/// With `only`, that layout is written when it applies (tests reach every
/// layout with it).
fn encode_agg_series(cols: &[Vec<f64>], only: Option<u8>, out: &mut Vec<u8>) {
    let mut best = vec![layout::FLOATS];
    let mut col = Vec::new();
    for c in cols {
        col.clear();
        encode_column(c, &mut col);
        put_varint(&mut best, col.len() as u64);
        best.extend_from_slice(&col);
    }
    if let Some(ints) = agg_ints(cols) {
        // Both integer layouts end with the same sum column.
        let mut sum = Vec::new();
        encode_agg_sum(&ints, &mut sum);
        for cand in [
            encode_agg_offsets(&ints, &sum),
            encode_agg_residuals(&ints, &sum),
        ] {
            let wanted = only.is_none_or(|l| cand[0] == l);
            if wanted && (cand.len() < best.len() || only.is_some()) {
                best = cand;
            }
        }
    }
    out.extend_from_slice(&best);
}

/// An aggregate series as scaled integers.
struct AggInts {
    scale: u8,
    mins: Vec<i64>,
    maxs: Vec<i64>,
    sums: Vec<i64>,
    counts: Vec<i64>,
    lasts: Vec<i64>,
}

/// The columns as integers when the integer layouts apply: min, max, sum
/// and last exact decimals of one scale, counts whole numbers.
fn agg_ints(cols: &[Vec<f64>]) -> Option<AggInts> {
    let [min, max, sum, count, last] = cols else {
        return None;
    };
    let n = min.len();
    if n == 0 || [max, sum, count, last].iter().any(|c| c.len() != n) {
        return None;
    }
    let counts = count
        .iter()
        .map(|c| {
            let i = *c as i64;
            // Bit for bit: refuses -0.0, fractions, NaN and what does not fit.
            ((i as f64).to_bits() == c.to_bits()).then_some(i)
        })
        .collect::<Option<Vec<i64>>>()?;
    let all: Vec<f64> = [min, max, sum, last]
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect();
    let (scale, ints) = as_decimals(&all)?;
    let mut chunks = ints.chunks_exact(n).map(<[i64]>::to_vec);
    Some(AggInts {
        scale,
        mins: chunks.next()?,
        maxs: chunks.next()?,
        sums: chunks.next()?,
        lasts: chunks.next()?,
        counts,
    })
}

/// The sum in the smallest of its modes: `u8 mode` · integer column.
fn encode_agg_sum(a: &AggInts, out: &mut Vec<u8>) {
    let n = a.mins.len();
    let (mins, maxs, sums, counts) = (&a.mins, &a.maxs, &a.sums, &a.counts);
    let over_min: Vec<i64> = (0..n)
        .map(|i| sums[i].wrapping_sub(counts[i].wrapping_mul(mins[i])))
        .collect();
    let over_mid: Vec<i64> = (0..n)
        .map(|i| {
            sums[i]
                .wrapping_mul(2)
                .wrapping_sub(counts[i].wrapping_mul(mins[i].wrapping_add(maxs[i])))
        })
        .collect();
    let half_mid: Vec<i64> = (0..n)
        .map(|i| sums[i].wrapping_sub(sum_mode::half_mid(counts[i], mins[i], maxs[i])))
        .collect();
    let mut best: Vec<u8> = Vec::new();
    let mut cand = Vec::new();
    for (mode, vals) in [
        (sum_mode::PLAIN, &sums[..]),
        (sum_mode::OVER_MIN, &over_min[..]),
        (sum_mode::OVER_MID, &over_mid[..]),
        (sum_mode::HALF_MID, &half_mid[..]),
    ] {
        cand.clear();
        cand.push(mode);
        encode_ints_v4(vals, &mut cand);
        if best.is_empty() || cand.len() < best.len() {
            std::mem::swap(&mut best, &mut cand);
        }
    }
    out.extend_from_slice(&best);
}

/// The [`layout::OFFSETS`] encoding of an aggregate series. Within a bucket
/// `max − min` and `last − min` are no wider than the bucket's spread,
/// where `max` and `last` alone are as wide as the values; the sum is kept
/// relative to what min and max predict. All the arithmetic wraps, and the
/// decoder undoes it with the same wrapping operations, so the scaled
/// integers come back exactly whatever their size (they are below 2^53, so
/// `2 × sum` cannot overflow either).
fn encode_agg_offsets(a: &AggInts, sum: &[u8]) -> Vec<u8> {
    let mut out = vec![layout::OFFSETS, a.scale];
    encode_ints_v4(&a.mins, &mut out);
    let spread: Vec<i64> = a
        .maxs
        .iter()
        .zip(&a.mins)
        .map(|(x, m)| x.wrapping_sub(*m))
        .collect();
    encode_ints_v4(&spread, &mut out);
    encode_ints_v4(&a.counts, &mut out);
    let last_off: Vec<i64> = a
        .lasts
        .iter()
        .zip(&a.mins)
        .map(|(l, m)| l.wrapping_sub(*m))
        .collect();
    encode_ints_v4(&last_off, &mut out);
    out.extend_from_slice(sum);
    out
}

/// The [`layout::RESIDUALS`] encoding: each bucket relative to the previous
/// bucket's last value (the first to an anchor, its own min).
fn encode_agg_residuals(a: &AggInts, sum: &[u8]) -> Vec<u8> {
    let n = a.mins.len();
    let mut out = vec![layout::RESIDUALS, a.scale];
    let anchor = a.mins[0];
    put_varint(&mut out, zigzag(anchor));
    let (mut moves, mut below, mut above) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut prev = anchor;
    for i in 0..n {
        let last = a.lasts[i];
        moves.push(last.wrapping_sub(prev));
        below.push(prev.min(last).wrapping_sub(a.mins[i]));
        above.push(a.maxs[i].wrapping_sub(prev.max(last)));
        prev = last;
    }
    encode_ints_v4(&moves, &mut out);
    encode_ints_v4(&below, &mut out);
    encode_ints_v4(&above, &mut out);
    encode_ints_v4(&a.counts, &mut out);
    out.extend_from_slice(sum);
    out
}

/// Encode a block. With `zstd_level`, the body is compressed when that makes
/// it smaller.
pub fn encode_block(block: &Block, zstd_level: Option<i32>) -> Vec<u8> {
    encode_block_as(block, zstd_level, None)
}

/// [`encode_block`], with every aggregate series in the layout `only`
/// where it applies.
#[cfg(test)]
pub(crate) fn encode_block_in_layout(block: &Block, only: u8) -> Vec<u8> {
    encode_block_as(block, None, Some(only))
}

fn encode_block_as(block: &Block, zstd_level: Option<i32>, only: Option<u8>) -> Vec<u8> {
    let n = block.ts.len();
    let mut body = Vec::with_capacity(64 + n * 2);
    put_varint(&mut body, n as u64);
    let mut ts = Vec::new();
    encode_ints(&block.ts, &mut ts);
    put_varint(&mut body, ts.len() as u64);
    body.extend_from_slice(&ts);

    put_varint(&mut body, block.series.len() as u64);
    let mut data = Vec::new();
    let mut col = Vec::new();
    for s in &block.series {
        put_varint(&mut body, u64::from(s.sid));
        put_varint(&mut body, s.rows.len() as u64);
        if s.rows.len() != n {
            let mut bitmap = vec![0u8; n.div_ceil(8)];
            for r in &s.rows {
                let r = *r as usize;
                if let Some(b) = bitmap.get_mut(r / 8) {
                    *b |= 1 << (r % 8);
                }
            }
            body.extend_from_slice(&bitmap);
        }
        let start = data.len();
        if block.kind == BlockKind::Agg {
            encode_agg_series(&s.cols, only, &mut data);
        } else {
            for c in &s.cols {
                col.clear();
                encode_column(c, &mut col);
                put_varint(&mut data, col.len() as u64);
                data.extend_from_slice(&col);
            }
        }
        put_varint(&mut body, (data.len() - start) as u64);
    }
    body.extend_from_slice(&data);

    let mut out = Vec::with_capacity(body.len() + 8);
    // Raw blocks did not change since version 1: they keep it.
    out.push(match block.kind {
        BlockKind::Raw => BLOCK_V1,
        BlockKind::Agg => BLOCK_V4,
    });
    let compressed = zstd_level
        .filter(|_| body.len() > 128)
        .and_then(|level| zstd::bulk::compress(&body, level).ok())
        .filter(|z| z.len() + 4 < body.len());
    if let Some(z) = compressed {
        out.push(FLAG_ZSTD);
        out.push(block.kind as u8);
        put_varint(&mut out, body.len() as u64);
        out.extend_from_slice(&z);
        return out;
    }
    out.push(0);
    out.push(block.kind as u8);
    out.extend_from_slice(&body);
    out
}
