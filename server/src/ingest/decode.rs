//! Body decoding: `Content-Encoding` (identity, gzip, zstd) with the decoded
//! size bounded, then JSON with errors that say where the problem is.

use std::borrow::Cow;
use std::io::Read;

use storage::model::IngestBatch;

use crate::error::ApiError;

/// Decodes `body` according to `encoding`, refusing anything that decodes to
/// more than `limit` bytes (413) without ever holding more than `limit + 1`.
/// An uncompressed body is returned as it is, not copied.
pub fn decode_body<'b>(
    encoding: Option<&str>,
    body: &'b [u8],
    limit: usize,
) -> Result<Cow<'b, [u8]>, ApiError> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    let too_large =
        || ApiError::PayloadTooLarge(format!("request body decodes to more than {limit} bytes"));
    if body.len() > limit {
        return Err(too_large());
    }
    let reader: Box<dyn Read + '_> = match encoding.as_deref() {
        None | Some("") | Some("identity") => return Ok(Cow::Borrowed(body)),
        Some("gzip") | Some("x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(body)),
        Some("zstd") => Box::new(
            zstd::stream::read::Decoder::new(body)
                .map_err(|e| ApiError::BadRequest(format!("body is not valid zstd: {e}")))?,
        ),
        Some(other) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding `{other}` is not supported (use gzip, zstd or none)"
            )));
        }
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("body could not be decompressed: {e}")))?;
    if out.len() > limit {
        return Err(too_large());
    }
    Ok(Cow::Owned(out))
}

/// Parses an ingest batch. Syntax errors are 400; a well-formed body with a
/// wrong field is 422 naming the field (`reports[0].memory.used_bytes: …`).
/// `NaN` and `Infinity` (which some JSON encoders emit) are 422 too.
pub fn parse_batch(bytes: &[u8]) -> Result<IngestBatch, ApiError> {
    // The common case, a good body, without the cost of tracking the path;
    // a bad one is parsed again to say where it went wrong.
    if let Ok(batch) = serde_json::from_slice::<IngestBatch>(bytes) {
        return Ok(batch);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<IngestBatch, _> = serde_path_to_error::deserialize(&mut de);
    let batch = match result {
        Ok(batch) => batch,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => ApiError::Invalid(format!("{path}: {inner}")),
                _ if non_number_at(bytes, inner.line(), inner.column()) => {
                    ApiError::Invalid(format!(
                        "{path}: NaN and Infinity are not numbers; leave out a value that was not measured"
                    ))
                }
                // `1e999`: well-formed JSON, but no finite number.
                _ if inner.to_string().starts_with("number out of range") => {
                    ApiError::Invalid(format!("{path}: number out of range (not finite)"))
                }
                _ => ApiError::BadRequest(format!("malformed JSON: {inner}")),
            });
        }
    };
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(batch)
}

/// Whether a JSON syntax error at (line, column) sits on `NaN`/`Infinity`.
fn non_number_at(bytes: &[u8], line: usize, column: usize) -> bool {
    let Some(text) = std::str::from_utf8(bytes).ok() else {
        return false;
    };
    let Some(l) = text.lines().nth(line.saturating_sub(1)) else {
        return false;
    };
    // serde_json reports the column of the offending character (1-based) or just past it.
    let start = column.saturating_sub(1).min(l.len());
    let around = &l[l.floor_char_boundary(start.saturating_sub(9))..];
    ["NaN", "Infinity"].iter().any(|w| {
        around
            .trim_start_matches(|c: char| c != 'N' && c != 'I')
            .starts_with(w)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn identity_gzip_and_zstd_decode() {
        let json = br#"{"reports":[{"ts_ms":1}]}"#;
        assert_eq!(*decode_body(None, json, 1024).unwrap(), *json);
        assert_eq!(
            *decode_body(Some("gzip"), &gzip(json), 1024).unwrap(),
            *json
        );
        let z = zstd::encode_all(&json[..], 3).unwrap();
        assert_eq!(*decode_body(Some("zstd"), &z, 1024).unwrap(), *json);
    }

    #[test]
    fn decompression_bomb_is_413_without_inflating_it() {
        let bomb = gzip(&vec![b' '; 50 << 20]);
        assert!(
            bomb.len() < 100 << 10,
            "50 MiB of spaces compress to {} bytes",
            bomb.len()
        );
        let err = decode_body(Some("gzip"), &bomb, 1 << 20).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge(_)), "{err:?}");
        let zbomb = zstd::encode_all(&vec![0u8; 50 << 20][..], 3).unwrap();
        let err = decode_body(Some("zstd"), &zbomb, 1 << 20).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge(_)), "{err:?}");
    }

    #[test]
    fn garbage_compressed_body_is_400_and_unknown_encoding_415() {
        assert!(matches!(
            decode_body(Some("gzip"), b"not gzip", 1024),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode_body(Some("br"), b"x", 1024),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn syntax_error_is_400() {
        let err = parse_batch(br#"{"reports": [ {"ts_ms": 1 "#).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
    }

    #[test]
    fn wrong_type_is_422_naming_the_field() {
        let err =
            parse_batch(br#"{"reports":[{"ts_ms":1,"memory":{"total_bytes":1,"used_bytes":-5}}]}"#)
                .unwrap_err();
        let ApiError::Invalid(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.starts_with("reports[0].memory.used_bytes"), "{msg}");
    }

    #[test]
    fn nan_and_infinity_are_422() {
        for body in [
            r#"{"reports":[{"ts_ms":1,"cpu":{"total_pct":NaN}}]}"#,
            "{\"reports\":[{\"ts_ms\":1,\n\"load\":[Infinity,1,1]}]}",
        ] {
            let err = parse_batch(body.as_bytes()).unwrap_err();
            assert!(matches!(err, ApiError::Invalid(_)), "{body}: {err:?}");
        }
        let err = parse_batch(br#"{"reports":[{"ts_ms":1,"load":[1e999,1,1]}]}"#).unwrap_err();
        let ApiError::Invalid(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.starts_with("reports[0].load"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let batch =
            parse_batch(br#"{"reports":[{"ts_ms":1,"gpu":{"pct":3}}],"extra":true}"#).unwrap();
        assert_eq!(batch.reports.len(), 1);
    }
}
