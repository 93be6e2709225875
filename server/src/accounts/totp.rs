//! Two-factor codes: TOTP (RFC 6238: HMAC-SHA1, six digits, 30 s steps,
//! one step of clock drift either way) through `totp-rs`, the enrolment QR
//! code drawn as SVG by `qrcode`, and recovery codes.

use std::net::IpAddr;

use qrcode::QrCode;
use qrcode::render::svg;
use totp_rs::{Algorithm, TOTP};

use crate::auth::tokens::{hash_token, random_bytes};
use crate::error::ApiError;
use crate::state::AppState;

/// Length of a step, seconds.
pub const STEP_S: u64 = 30;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show.
const ISSUER: &str = "StatusMonitor";

/// A fresh shared secret: 160 bits, RFC 4226's recommended length.
pub fn new_secret() -> Vec<u8> {
    random_bytes::<20>().to_vec()
}

/// The TOTP of `secret` for `username`, checking one step at a time.
pub fn totp(secret: &[u8], username: &str) -> Result<TOTP, ApiError> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        STEP_S,
        secret.to_vec(),
        Some(ISSUER.into()),
        username.to_string(),
    )
    .map_err(|e| ApiError::internal(anyhow::anyhow!("invalid TOTP parameters: {e}")))
}

/// The time step whose code `code` is, among the one before now, now and the
/// one after (clock drift); `None` when it is none of them.
pub fn matching_step(totp: &TOTP, code: &str, now_ms: i64) -> Option<u64> {
    let now_step = u64::try_from(now_ms / 1000).ok()? / STEP_S;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    // `check` compares in constant time.
    [
        now_step.checked_sub(1),
        Some(now_step),
        now_step.checked_add(1),
    ]
    .into_iter()
    .flatten()
    .find(|step| totp.check(&code, step * STEP_S))
}

/// The enrolment QR code of `url` as an SVG document.
pub fn qr_svg(url: &str) -> Result<String, ApiError> {
    let code = QrCode::new(url.as_bytes())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("cannot draw the QR code: {e}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Ten recovery codes (`xxxxx-xxxxx`, about 49 bits each) and their hashes.
pub fn recovery_codes() -> (Vec<String>, Vec<storage::catalog::TokenHash>) {
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let p = super::one_time_password();
            // `xxxxx-xxxxx-…`: the first two groups.
            p[..11].to_string()
        })
        .collect();
    let hashes = codes.iter().map(|c| hash_recovery(c)).collect();
    (codes, hashes)
}

/// What is stored of a recovery code: the hash of its canonical form
/// (lower-case, no spaces or dashes), so `ABCDE FGHJK` works too.
pub fn hash_recovery(code: &str) -> storage::catalog::TokenHash {
    let canonical: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hash_token(&canonical)
}

/// Whether `code` looks like an authenticator code rather than a recovery
/// code.
fn is_totp_code(code: &str) -> bool {
    let digits: Vec<char> = code.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.iter().all(char::is_ascii_digit)
}

/// Checks a second factor of `user_id`: a TOTP code (once per step) or a
/// recovery code (once). Rate-limited per account and address. `Ok(())` or
/// a 401 `two_factor_required` saying what was wrong.
pub async fn verify(
    state: &AppState,
    user_id: u64,
    username: &str,
    code: Option<&str>,
    ip: IpAddr,
) -> Result<(), ApiError> {
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(ApiError::TwoFactorRequired(
            "enter the six-digit code of your authenticator app (or a recovery code) \
             as two_factor_code"
                .into(),
        ));
    };
    state.limits.check_code(user_id, ip)?;
    let Some(record) = state.catalog(move |c| c.totp(user_id)).await? else {
        return Err(ApiError::TwoFactorRequired(
            "two-factor log-in is not set up for this account".into(),
        ));
    };
    if is_totp_code(code) {
        let totp = totp(&record.secret, username)?;
        let Some(step) = matching_step(&totp, code, state.clock.now_ms()) else {
            return Err(ApiError::TwoFactorRequired(
                "wrong two-factor code; check the clock of the device that shows it".into(),
            ));
        };
        if state
            .catalog(move |c| c.use_totp_step(user_id, step))
            .await?
        {
            Ok(())
        } else {
            Err(ApiError::TwoFactorRequired(
                "this code was used already; wait for the next one (at most 30 s)".into(),
            ))
        }
    } else {
        let hash = hash_recovery(code);
        match state
            .catalog(move |c| c.use_recovery_code(user_id, &hash))
            .await?
        {
            Some(left) => {
                tracing::info!(user_id, left, "a recovery code was used");
                Ok(())
            }
            None => Err(ApiError::TwoFactorRequired(
                "wrong recovery code, or one that was used already".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vector_and_steps_around_now() {
        // RFC 6238 appendix B: T = 59 s, SHA-1, secret "12345678901234567890"
        // → 94287082 (eight digits); its last six are the six-digit code.
        let t = totp(b"12345678901234567890", "a").unwrap();
        assert_eq!(t.generate(59), "287082");
        assert_eq!(matching_step(&t, "287082", 59_000), Some(1));
        assert_eq!(
            matching_step(&t, "287 082", 89_000),
            Some(1),
            "one step late"
        );
        assert_eq!(matching_step(&t, "287082", 120_000), None, "two steps late");
        assert_eq!(matching_step(&t, "000000", 59_000), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_canonically() {
        let (codes, hashes) = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 11);
        assert_eq!(
            hash_recovery(&codes[0].to_uppercase().replace('-', " ")),
            hashes[0]
        );
        assert!(!is_totp_code(&codes[0]));
        assert!(is_totp_code("123 456"));
    }

    #[test]
    fn the_qr_code_is_an_svg_document() {
        let svg = qr_svg("otpauth://totp/StatusMonitor:a?secret=ABC&issuer=StatusMonitor").unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
        assert!(!svg.contains("<script"));
    }
}
