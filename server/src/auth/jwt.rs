//! Access tokens: JWT, HS256 only, 15 minutes. Claims `{ sub, sid, sk, iat,
//! exp }` (user id, session family id, the family's 128-bit secret key as 32
//! hex digits, seconds). The key is what makes a forged token useless even to
//! someone who has the signing secret: family ids are sequential, keys are not. Expiry is checked against the
//! server's [`Clock`](storage::clock::Clock), not the library's wall clock,
//! so tests can move time; a token whose family was revoked is refused by the
//! extractor even before it expires.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::auth::ACCESS_TTL_S;
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: u64,
    /// Session family id.
    pub sid: u64,
    /// The family's secret key, 32 lower-case hex digits (see
    /// `storage::catalog` sessions). Required: a token without it is refused.
    pub sk: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

impl Claims {
    /// The family key `sk` as a number; `None` when it is not 32 hex digits.
    pub fn session_key(&self) -> Option<u128> {
        // `from_str_radix` takes a leading `+` too: hex digits only.
        if self.sk.len() != 32 || !self.sk.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(&self.sk, 16).ok()
    }
}

/// The signing key and the strict validation rules.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> JwtKeys {
        // Only HS256: a token naming `none`, RS256 or anything else is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        // `exp` is required, but compared with our clock in `verify`.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 0;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A signed access token for `user_id` in family `session_id`, whose
    /// secret key is `session_key`.
    pub fn issue(
        &self,
        user_id: u64,
        session_id: u64,
        session_key: u128,
        now_ms: i64,
    ) -> Result<String, ApiError> {
        let iat = now_ms.div_euclid(1000);
        let claims = Claims {
            sub: user_id,
            sid: session_id,
            sk: format!("{session_key:032x}"),
            iat,
            exp: iat + ACCESS_TTL_S as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// The claims of `token` if its signature is ours and it has not expired
    /// (the family and its key are checked by the caller, see
    /// [`Claims::session_key`]).
    pub fn verify(&self, token: &str, now_ms: i64) -> Option<Claims> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.exp * 1000 > now_ms).then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000;

    #[test]
    fn round_trip_and_expiry() {
        let keys = JwtKeys::new(&[7; 32]);
        let t = keys.issue(3, 9, u128::MAX - 5, NOW).unwrap();
        let c = keys.verify(&t, NOW).unwrap();
        assert_eq!((c.sub, c.sid), (3, 9));
        assert_eq!(c.session_key(), Some(u128::MAX - 5));
        assert!(keys.verify(&t, NOW + 899_999).is_some());
        assert!(keys.verify(&t, NOW + 900_000).is_none());
    }

    #[test]
    fn other_secret_and_alg_none_are_refused() {
        let keys = JwtKeys::new(&[7; 32]);
        let other = JwtKeys::new(&[8; 32]);
        assert!(
            keys.verify(&other.issue(3, 9, 1, NOW).unwrap(), NOW)
                .is_none()
        );
        let t = keys.issue(3, 9, 1, NOW).unwrap();
        let payload = t.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"} in base64url.
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(keys.verify(&none, NOW).is_none());
    }

    #[test]
    fn a_malformed_session_key_is_none() {
        let claims = |sk: &str| Claims {
            sub: 1,
            sid: 1,
            sk: sk.into(),
            iat: 0,
            exp: 1,
        };
        assert_eq!(claims(&"0".repeat(32)).session_key(), Some(0));
        for bad in [
            "",
            "1",
            "+0000000000000000000000000000001",
            &"g".repeat(32),
            &"0".repeat(33),
        ] {
            assert_eq!(claims(bad).session_key(), None, "{bad:?}");
        }
    }
}
