//! The generic JSON webhook: `POST {url}` with a [`WebhookPayload`] body and,
//! when the user set a secret, `X-StatusMonitor-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of the exact body bytes keyed with the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use storage::model::WebhookPayload;

use super::Outgoing;

pub const SIGNATURE_HEADER: &str = "X-StatusMonitor-Signature";

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn post(url: &str, secret: Option<&str>, payload: &WebhookPayload) -> Outgoing {
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let headers = secret
        .map(|s| vec![(SIGNATURE_HEADER, signature(s, &body))])
        .unwrap_or_default();
    Outgoing {
        url: url.to_string(),
        body,
        headers,
        redact: None,
        // Set per delivery from the owner's account.
        caller: super::Caller::User,
        method: "POST",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
