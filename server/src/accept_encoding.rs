//! `Accept-Encoding` negotiation (RFC 9110 §12.5.3), the one rule for every
//! answer the server compresses itself (the embedded bundle, history).
//!
//! Coding names are case-insensitive; each may carry a q-value (`q=0`
//! refuses it, a larger value says how much the client prefers it; a value
//! that does not parse counts as a refusal); `*` stands for every coding not
//! named. Among the codings the server offers, the client's highest q wins,
//! and the server's own order breaks ties.

use axum::http::HeaderValue;

/// The client's weight of `coding` in thousandths (0: refused or not named).
fn weight(accept: &str, coding: &str) -> u16 {
    let mut named = None;
    let mut any = None;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| parse_q(v.trim()))
            })
            .next_back()
            .unwrap_or(Some(1000))
            .unwrap_or(0);
        if name.eq_ignore_ascii_case(coding) {
            named = Some(named.map_or(q, |n: u16| n.max(q)));
        } else if name == "*" {
            any = Some(q);
        }
    }
    named.or(any).unwrap_or(0)
}

/// `0`, `0.5`, `1.000` → thousandths; anything else (`2`, `-1`, `abc`) → None.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

/// Whether the client takes `coding` at all.
pub fn accepts(header: Option<&HeaderValue>, coding: &str) -> bool {
    header
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| weight(accept, coding) > 0)
}

/// The coding of `offered` (in the server's order of preference) the client
/// prefers; `None`: send the body as it is.
pub fn negotiate<'a>(header: Option<&HeaderValue>, offered: &[&'a str]) -> Option<&'a str> {
    let accept = header.and_then(|v| v.to_str().ok())?;
    let mut best: Option<(&str, u16)> = None;
    for coding in offered {
        let w = weight(accept, coding);
        if w > 0 && best.is_none_or(|(_, b)| w > b) {
            best = Some((coding, w));
        }
    }
    best.map(|(coding, _)| coding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> Option<HeaderValue> {
        Some(HeaderValue::from_str(v).unwrap())
    }

    #[test]
    fn names_are_case_insensitive_and_q_zero_refuses() {
        assert!(accepts(h("GZIP").as_ref(), "gzip"));
        assert!(accepts(h("br;q=0.1, gzip").as_ref(), "br"));
        assert!(!accepts(h("br;q=0").as_ref(), "br"));
        assert!(!accepts(h("br; Q=0.000").as_ref(), "br"));
        assert!(!accepts(h("br;q=0 , gzip").as_ref(), "br"));
        assert!(!accepts(h("gzip").as_ref(), "br"));
        assert!(!accepts(None, "gzip"));
        // A q-value that does not parse is a refusal, not a yes.
        assert!(!accepts(h("br;q=2").as_ref(), "br"));
        assert!(!accepts(h("br;q=0.5000").as_ref(), "br"));
        assert!(!accepts(h("br;q=abc").as_ref(), "br"));
    }

    #[test]
    fn the_star_covers_codings_not_named() {
        assert!(accepts(h("*").as_ref(), "br"));
        assert!(!accepts(h("*, br;q=0").as_ref(), "br"));
        assert!(accepts(h("*;q=0, gzip").as_ref(), "gzip"));
        assert!(!accepts(h("*;q=0, gzip").as_ref(), "br"));
    }

    #[test]
    fn the_highest_q_wins_and_the_server_breaks_ties() {
        let offered = ["zstd", "gzip"];
        assert_eq!(negotiate(h("gzip, zstd").as_ref(), &offered), Some("zstd"));
        assert_eq!(
            negotiate(h("zstd;q=0.5, gzip").as_ref(), &offered),
            Some("gzip")
        );
        assert_eq!(
            negotiate(h("zstd;q=0, GZIP;q=0.5").as_ref(), &offered),
            Some("gzip")
        );
        assert_eq!(negotiate(h("br, identity").as_ref(), &offered), None);
        assert_eq!(negotiate(None, &offered), None);
    }
}
