//! Fuzz the chunk decoders: any bytes must decode or fail with an error,
//! never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::tsdb::chunk::{decode_block, decode_column};
use storage::tsdb::head::decode_row;

fuzz_target!(|data: &[u8]| {
    let _ = decode_block(data);
    // The same bytes as the body of an uncompressed version-3 aggregate
    // block, so mutations reach its series layouts and entropy-coded
    // columns without first having to find the header.
    let mut v3 = vec![3u8, 0, 1];
    v3.extend_from_slice(data);
    let _ = decode_block(&v3);
    let _ = decode_row(data);
    if let Some((n, rest)) = data.split_first() {
        let _ = decode_column(rest, usize::from(*n) * 7);
    }
});
