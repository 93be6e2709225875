//! The embedded client bundle and static files.
//!
//! Everything under `assets/pkg/` (the wasm-bindgen output of `ui`) and
//! `assets/static/` is compiled into the binary, with gzip and brotli copies
//! made at build time. URLs carry [`BUNDLE_HASH`], a hash of all of it, so the
//! files can be cached forever: a new build means new URLs.

use std::borrow::Cow;

#[derive(rust_embed::RustEmbed)]
#[folder = "$OUT_DIR/embed"]
struct Embedded;

/// Hash of every embedded file; part of each asset URL (`/pkg/{hash}/ui.js`).
pub const BUNDLE_HASH: &str = env!("STATUSMONITOR_BUNDLE_HASH");

/// A content encoding of an embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The `Content-Encoding` value, `None` for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }
}

/// One embedded file, ready to send.
#[derive(Debug)]
pub struct Asset {
    pub body: Cow<'static, [u8]>,
    pub mime: String,
    pub encoding: Encoding,
}

/// Looks up `path` (`pkg/ui.js`, `static/style.css`) and picks the best
/// encoding among those the client `accepts` (brotli, then gzip).
pub fn get(path: &str, accepts_br: bool, accepts_gzip: bool) -> Option<Asset> {
    let plain = Embedded::get(path)?;
    let mime = plain.metadata.mimetype().to_string();
    let compressed = [
        (accepts_br, "br", Encoding::Brotli),
        (accepts_gzip, "gz", Encoding::Gzip),
    ]
    .into_iter()
    .filter(|(ok, _, _)| *ok)
    .find_map(|(_, ext, enc)| Embedded::get(&format!("{path}.{ext}")).map(|f| (f, enc)));
    Some(match compressed {
        Some((file, encoding)) => Asset {
            body: file.data,
            mime,
            encoding,
        },
        None => Asset {
            body: plain.data,
            mime,
            encoding: Encoding::Identity,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_is_embedded_with_compressed_copies() {
        let js = get("pkg/ui.js", true, true).expect("ui.js embedded");
        assert_eq!(js.encoding, Encoding::Brotli);
        assert!(js.mime.contains("javascript"), "{}", js.mime);
        let wasm = get("pkg/ui_bg.wasm", false, true).expect("wasm embedded");
        assert_eq!(wasm.encoding, Encoding::Gzip);
        assert_eq!(wasm.mime, "application/wasm");
        let plain = get("pkg/ui_bg.wasm", false, false).unwrap();
        assert_eq!(&plain.body[..4], b"\0asm");
        assert_eq!(BUNDLE_HASH.len(), 16);
    }

    #[test]
    fn missing_file_is_none() {
        assert!(get("pkg/nope.js", true, true).is_none());
    }
}
