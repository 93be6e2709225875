//! Fuzz the chunk decoders: any bytes must decode or fail with an error,
//! never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::tsdb::chunk::{decode_block, decode_column};
use storage::tsdb::head::decode_row;

fuzz_target!(|data: &[u8]| {
    let _ = decode_block(data);
    // The same bytes as the body of an uncompressed version-3 and version-4
    // aggregate block, so mutations reach their series layouts and rANS-
    // or prefix-coded columns without first having to find the header.
    for version in [3u8, 4] {
        let mut block = vec![version, 0, 1];
        block.extend_from_slice(data);
        let _ = decode_block(&block);
    }
    let _ = decode_row(data);
    if let Some((n, rest)) = data.split_first() {
        let _ = decode_column(rest, usize::from(*n) * 7);
    }
});
