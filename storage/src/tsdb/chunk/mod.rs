//! Chunk codec: how one time window of samples becomes bytes.
//!
//! A *block* holds one agent's rows of one window: the timestamp column once,
//! then for each series a presence map and its value column(s) (one for raw
//! samples, five for aggregates: min, max, sum, count, last). An index at the
//! front lets a reader decode only the series it needs. Columns are encoded
//! by [`encoder`] and read back by [`decoder`], which never panics on any
//! input. The byte layout is drawn in `docs/storage-format.md`.
//!
//! Blocks carry their own version byte. Version 1 stores an aggregate
//! series as five independent float columns; version 2 starts each
//! aggregate series with a [`layout`] byte, so that a series whose five
//! columns are decimals of one scale can store `max` and `last` as offsets
//! from `min` and `sum` relative to them; version 3 adds the residuals
//! layout and rANS-coded integer columns (`entropy.rs`); version 4 (written
//! for every aggregate block) codes them with a prefix code instead
//! (`huffman.rs`), smaller and read about as fast as bit-packing. Raw
//! blocks did not change and are still written as version 1. Every version
//! decodes, so a data directory needs no conversion.

pub mod decoder;
pub mod encoder;
mod entropy;
mod huffman;

pub use decoder::{BlockReader, DecodeError, decode_block, decode_column};
pub use encoder::{encode_block, encode_column, encode_ints};

/// Version byte of blocks whose aggregate series are five float columns
/// (every raw block is still written with it).
pub const BLOCK_V1: u8 = 1;
/// Version byte of aggregate blocks with a layout byte per series.
pub const BLOCK_V2: u8 = 2;
/// Version byte of aggregate blocks that may use the [`layout::RESIDUALS`]
/// layout and entropy-coded integer columns ([`itag::ENTROPY`]) (data
/// format 5; read, no longer written).
pub const BLOCK_V3: u8 = 3;
/// Version byte of aggregate blocks whose integer columns may be
/// prefix-coded ([`itag::HUFFMAN`]) instead of rANS-coded (data format 6).
pub const BLOCK_V4: u8 = 4;
/// Flag bit: the block body is one zstd frame.
pub const FLAG_ZSTD: u8 = 1;
/// Values per bit-packing group; each group carries its own bit width.
pub const GROUP: usize = 128;
/// The largest row count a block may claim (guards allocations on decode).
pub const MAX_ROWS: usize = 1 << 20;

/// Column tags (first byte of an encoded value column).
pub(crate) mod tag {
    /// All values have the same bits: 8 bytes follow.
    pub const CONST: u8 = 0;
    /// Exact decimals: scale byte, then an integer column of `value * 10^scale`.
    pub const DECIMAL: u8 = 1;
    /// Gorilla XOR of the IEEE bits.
    pub const GORILLA: u8 = 2;
    /// Raw little-endian f64s.
    pub const RAW: u8 = 3;
}

/// Integer column tags (first byte of an encoded integer column).
pub(crate) mod itag {
    /// One zig-zag varint: every value equals it.
    pub const CONST: u8 = 0;
    /// Frame of reference: per group a zig-zag varint minimum and packed offsets.
    pub const FOR: u8 = 1;
    /// First value, then zig-zag deltas, bit-packed per group.
    pub const DELTA: u8 = 2;
    /// First value, first delta, then zig-zag delta-of-deltas, bit-packed per group.
    pub const DOD: u8 = 3;
    /// Every value is a multiple of a common factor (bytes counted in 4 KiB
    /// pages): varint factor ≥ 2, then an integer column of `value / factor`.
    pub const GCD: u8 = 4;
    /// Mostly zeros (idle disks, quiet interfaces): a bitmap of the non-zero
    /// positions, then an integer column of just the non-zero values.
    pub const SPARSE: u8 = 5;
    /// Bit lengths rANS-coded with the column's own histogram, then the
    /// bits below each value's leading one (aggregate blocks of version 3;
    /// see `entropy.rs`).
    pub const ENTROPY: u8 = 6;
    /// Bit lengths prefix-coded with the column's own canonical code, each
    /// followed by the bits below the value's leading one (aggregate blocks
    /// of version 4; see `huffman.rs`).
    pub const HUFFMAN: u8 = 7;
}

/// How a version-2 aggregate series stores its five columns (first byte of
/// its data).
pub(crate) mod layout {
    /// Five float columns, each `varint len · float column`, as in version 1.
    pub const FLOATS: u8 = 0;
    /// Min, max, sum and last are exact decimals of one scale and count is a
    /// whole number: `u8 scale`, then integer columns (scaled by
    /// `10^scale`) of `min`, `max − min`, `count`, `last − min`, then a
    /// [`super::sum_mode`] byte and the integer column of the sum it names.
    pub const OFFSETS: u8 = 1;
    /// Version 3: like [`OFFSETS`] a decimal scale, then each bucket
    /// relative to the previous bucket's `last` (`prev`; the first one's is
    /// a zig-zag varint anchor): `last − prev`, `min(prev, last) − min`,
    /// `max − max(prev, last)`, `count`, then a [`super::sum_mode`] byte and
    /// the sum column it names. A random walk's minute moves by its net
    /// step and strays from its two ends by less than its whole spread.
    pub const RESIDUALS: u8 = 2;
}

/// How the sum is stored in the [`layout::OFFSETS`] layout (smallest wins).
pub(crate) mod sum_mode {
    /// The sum itself.
    pub const PLAIN: u8 = 0;
    /// `sum − count × min` (never negative: every sample is ≥ min).
    pub const OVER_MIN: u8 = 1;
    /// `2 × sum − count × (min + max)`: twice the distance of the sum from
    /// the one the bucket's midpoint would give.
    pub const OVER_MID: u8 = 2;
    /// `sum − (count × (min + max)) >> 1` (arithmetic shift, wrapping): the
    /// distance from the midpoint's sum without the factor 2 of
    /// [`OVER_MID`] (version 3).
    pub const HALF_MID: u8 = 3;

    /// What [`HALF_MID`] subtracts.
    pub(crate) fn half_mid(count: i64, min: i64, max: i64) -> i64 {
        count.wrapping_mul(min.wrapping_add(max)) >> 1
    }
}

/// What a block's series carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// One value column per series.
    Raw = 0,
    /// Five columns per series: min, max, sum, count, last.
    Agg = 1,
}

impl BlockKind {
    pub fn columns(self) -> usize {
        match self {
            BlockKind::Raw => 1,
            BlockKind::Agg => 5,
        }
    }
}

/// One series inside a block, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesColumns {
    /// The agent-local series id.
    pub sid: u32,
    /// Row indices (into the block's timestamp column) where the series has a value.
    pub rows: Vec<u32>,
    /// `kind.columns()` columns, each `rows.len()` long.
    pub cols: Vec<Vec<f64>>,
}

/// A whole block, decoded (or about to be encoded).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    /// Strictly increasing timestamps (ms).
    pub ts: Vec<i64>,
    /// Series in increasing `sid` order.
    pub series: Vec<SeriesColumns>,
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bits needed to hold `v` (0 for 0).
pub(crate) fn bit_width(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// LSB-first bit writer.
#[derive(Default)]
pub(crate) struct BitWriter {
    pub buf: Vec<u8>,
    acc: u64,
    nacc: u32,
}

impl BitWriter {
    pub fn write(&mut self, v: u64, n: u32) {
        if n > 32 {
            self.write(v & 0xFFFF_FFFF, 32);
            self.write(v >> 32, n - 32);
            return;
        }
        if n == 0 {
            return;
        }
        let v = v & ((1u64 << n) - 1);
        self.acc |= v << self.nacc;
        self.nacc += n;
        while self.nacc >= 8 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.nacc -= 8;
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.nacc > 0 {
            self.buf.push(self.acc as u8);
        }
        self.buf
    }
}

/// 360 sums of 12 uniform steps of ±60: bell-shaped, like a minute's
/// residuals in a 6 h aggregate block (the integer codecs' tests).
#[cfg(test)]
pub(crate) fn minute_residuals() -> Vec<i64> {
    let mut x = 3u64;
    (0..360)
        .map(|_| {
            (0..12)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 33) % 121) as i64 - 60
                })
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, i64::MAX, i64::MIN, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}

/// Pins block format v1: these bytes are drawn in `docs/storage-format.md`.
#[cfg(test)]
mod fixture {
    use super::*;

    fn example() -> Block {
        Block {
            kind: BlockKind::Raw,
            ts: vec![1_795_564_800_000, 1_795_564_805_000, 1_795_564_810_000],
            series: vec![
                SeriesColumns {
                    sid: 0,
                    rows: vec![0, 1, 2],
                    cols: vec![vec![12.5, 12.5, 13.1]],
                },
                SeriesColumns {
                    sid: 3,
                    rows: vec![1],
                    cols: vec![vec![3400.0]],
                },
            ],
        }
    }

    /// An aggregate block of 48 minutes of a one-decimal random walk (12
    /// steps of up to ±6.0 a minute, like a core's load) and of a walk in
    /// whole numbers (a network rate): noisy enough that version 3 writes
    /// the residuals layout and entropy-coded columns.
    fn noisy_example() -> Block {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut step = |span: i64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) % (2 * span as u64 + 1)) as i64 - span
        };
        let mut series = Vec::new();
        for (sid, span, scale, lo, hi) in [
            (1u32, 60i64, 10.0, 0i64, 1000i64),
            (7, 30_000, 1.0, 0, 125_000_000),
        ] {
            let mut v = (lo + hi) / 4;
            let mut cols = vec![Vec::new(); 5];
            for _ in 0..48 {
                let (mut mn, mut mx, mut sum) = (i64::MAX, i64::MIN, 0i64);
                for _ in 0..12 {
                    v = (v + step(span)).clamp(lo, hi);
                    mn = mn.min(v);
                    mx = mx.max(v);
                    sum += v;
                }
                for (c, val) in cols.iter_mut().zip([mn, mx, sum, 12, v]) {
                    c.push(if c.len() == 3 {
                        val as f64
                    } else {
                        val as f64 / scale
                    });
                }
            }
            // Column 3 (count) is whole; the others are decimals of `scale`.
            cols[3] = vec![12.0; 48];
            series.push(SeriesColumns {
                sid,
                rows: (0..48).collect(),
                cols,
            });
        }
        Block {
            kind: BlockKind::Agg,
            ts: (0..48).map(|i| 1_795_564_800_000 + i * 60_000).collect(),
            series,
        }
    }

    const V1: &str =
        "010000030a0380a08480c268904e00020003080301020a07010102fa0104c00900000000000090aa40";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn block_v1_bytes_are_stable() {
        let bytes = encode_block(&example(), None);
        assert_eq!(hex(&bytes), V1);
        assert_eq!(decoder::decode_block(&bytes).unwrap(), example());
    }

    /// An aggregate block: one series of one-decimal values, one with a
    /// negative minimum, a float that is no decimal and a big sum.
    fn agg_example() -> Block {
        Block {
            kind: BlockKind::Agg,
            ts: vec![1_795_564_800_000, 1_795_564_860_000, 1_795_564_920_000],
            series: vec![
                SeriesColumns {
                    sid: 0,
                    rows: vec![0, 1, 2],
                    cols: vec![
                        vec![12.5, 11.0, 13.1],
                        vec![14.0, 12.5, 13.1],
                        vec![160.2, 140.0, 157.2],
                        vec![12.0, 12.0, 12.0],
                        vec![13.5, 11.2, 13.1],
                    ],
                },
                SeriesColumns {
                    sid: 5,
                    rows: vec![0, 2],
                    cols: vec![
                        vec![-0.1, 0.30000000000000004],
                        vec![2.5e9, 0.30000000000000004],
                        vec![1.0e10, 3.6000000000000005],
                        vec![12.0, 12.0],
                        vec![7.0, 0.30000000000000004],
                    ],
                },
            ],
        }
    }

    /// `agg_example()` as the version-1 encoder wrote it (five float
    /// columns per series): data directories hold blocks like it.
    const V1_AGG: &str = "010001030b0380a08480c268c0a907000200032f0502055208010103fa011d07480801010398021d062a0901010284190993b10209000000000000002840080101038e022d075411039a9999999999b9bf343333333333d33f1103000000205fa0e241343333333333d33f1103000000205fa00242cecccccccccc0c400900000000000000284011030000000000001c40343333333333d33f";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("fixture is hex"))
            .collect()
    }

    #[test]
    fn aggregate_block_v1_still_decodes() {
        let bytes = unhex(V1_AGG);
        assert_eq!(bytes[0], BLOCK_V1);
        assert_eq!(decoder::decode_block(&bytes).unwrap(), agg_example());
    }

    /// `agg_example()` as the version-2 encoder wrote it (data format 4:
    /// the decimal series in the offsets layout, the other five float
    /// columns): data directories of format 4 hold blocks like it.
    const V2_AGG: &str = "020001030b0380a08480c268c0a907000200031805020553010103fa011d07480503001e00180214043f0203305708800011039a9999999999b9bf343333333333d33f1103000000205fa0e241343333333333d33f1103000000205fa00242cecccccccccc0c400900000000000000284011030000000000001c40343333333333d33f";

    #[test]
    fn aggregate_block_v2_still_decodes() {
        let bytes = unhex(V2_AGG);
        assert_eq!(bytes[0], BLOCK_V2);
        assert_eq!(decoder::decode_block(&bytes).unwrap(), agg_example());
        let r = decoder::BlockReader::parse(&bytes).unwrap();
        assert_eq!(r.layout_of(0), Some(layout::OFFSETS));
        assert_eq!(r.layout_of(1), Some(layout::FLOATS));
    }

    /// `noisy_example()` as the version-3 encoder wrote it (data format 5:
    /// the residuals and offsets layouts, entropy-coded columns): data
    /// directories of format 5 hold blocks like it.
    const V3_NOISY: &str = concat!(
        "030001300b0380a08480c268c0a907000201309b020730b903010101a8030c0040021f8091a0101062d119b2",
        "3119b8d125a0822b2d022382422dc8822de6b228ce822ea6d220e171258ad10f32f12091f228f9622815521e",
        "87922c1ad22206c22107621634110601360bb7d88212923a8725fc62154428842cf290851d0ce20d3e28410c",
        "42308133ac20025328c4247c10913498830968500300e6900541c8010696c8021bda20833e00a21000180100",
        "0a8674c083d98ef0a00d02006440cb1029340086224ab400000f2efc61040b0b14900a11003011d019834821",
        "01004174d2c8023804c106001f0000c017030185060b9941c37546de10d100a00cbb110ae896031cbefce644",
        "0d928c7e2453a1f6bc88479b52c149bc7229c250a72ef3c2d4707e329b7ac044434b110e5eceb314f094e71b",
        "0200cef5df1d0280ec0d135b3659994bc6d8fc1cb307137aad0e2629673aee44a102e418eab0a636a29eba7a",
        "a4244a71623b7eb3de813975448033c4a9892ad8626daf1fdb5252ddcffd72c93ab52b1859a23d3b422d3ac4",
        "79a064d3861f077c03260506f3fcba484978cbde3876c353a01c46b6aa074f3a9cb50201b59f0311db67943e",
        "8830db3ee3e06996117e9cd750836b360401a081f20b006040014f93963a0f61b6cf2cdacd0374ff8715d0f6",
        "99885dcb25fdf82052da3eb37da6b0958dc7e9835497787a8c2400fd03232c019472d6ed339a6d8cab5505dc",
        "3e23050f1ad9943fe2ac05bdc3efbffead01cdcc0211727ee48b99f95a2335e78b0fcfd1baa7410b861664e9",
        "f5694411aa4b749879c0448f4353364221d35b3f833d68ea8a6526fb129ef2cad68c56040070b8088c52b98c",
        "bf601b680a6db89e2a9d0300180301bfdf1f1317e1f2c19f908254bcbcafb3ae014aa4b3eb5c0efffc72e331",
        "e492d796792f0d1dddd750267cadbae30e62138e92d857289d2c5349dd16d35fd46d2437a1f71a39c7ad0c58",
        "0000184208b78eb251846edf9d9d8e0895b043bc368ae106277c94d1ea5d14ba4bddb22669baec0f02f94f42",
        "67",
    );

    #[test]
    fn aggregate_block_v3_still_decodes() {
        let bytes = unhex(V3_NOISY);
        assert_eq!(bytes[0], BLOCK_V3);
        assert_eq!(decoder::decode_block(&bytes).unwrap(), noisy_example());
        let r = decoder::BlockReader::parse(&bytes).unwrap();
        assert_eq!(r.layout_of(0), Some(layout::OFFSETS));
        assert_eq!(r.layout_of(1), Some(layout::RESIDUALS));
    }

    /// A block that claims a version this build does not know is refused,
    /// not guessed at.
    #[test]
    fn unknown_block_versions_are_refused() {
        let mut bytes = encode_block(&agg_example(), None);
        assert_eq!(bytes[0], BLOCK_V4);
        assert_eq!(decoder::decode_block(&bytes).unwrap(), agg_example());
        bytes[0] = 5;
        assert!(decoder::decode_block(&bytes).is_err(), "unknown version");
    }

    /// Version 4 writes the noisy block smaller than version 3 did, with
    /// prefix-coded columns, and reads it back exactly.
    #[test]
    fn noisy_blocks_are_written_as_v4_and_smaller_than_v3() {
        let bytes = encode_block(&noisy_example(), None);
        assert_eq!(bytes[0], BLOCK_V4);
        assert_eq!(decoder::decode_block(&bytes).unwrap(), noisy_example());
        assert!(
            bytes.len() < unhex(V3_NOISY).len(),
            "{} bytes against {}",
            bytes.len(),
            unhex(V3_NOISY).len()
        );
    }

    #[test]
    fn aggregate_blocks_are_written_as_v4_and_smaller() {
        let bytes = encode_block(&agg_example(), None);
        assert_eq!(bytes[0], BLOCK_V4);
        assert_eq!(decoder::decode_block(&bytes).unwrap(), agg_example());
        let r = decoder::BlockReader::parse(&bytes).unwrap();
        assert_eq!(r.series(0).unwrap(), agg_example().series[0]);
        assert!(bytes.len() <= unhex(V2_AGG).len(), "{} bytes", bytes.len());
        assert!(bytes.len() < unhex(V1_AGG).len(), "{} bytes", bytes.len());
    }
}
