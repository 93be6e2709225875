//! Password hashing with Argon2id (parameters in [`PasswordCost`] and
//! `docs/security.md`). Hashing runs on the blocking pool, at most a few at a
//! time so a burst of log-ins cannot allocate unbounded memory.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::auth::tokens::random_bytes;
use crate::config::PasswordCost;
use crate::error::ApiError;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// How many hashes may run at once (each takes `memory_kib`).
const CONCURRENT_HASHES: usize = 4;

pub struct Passwords {
    argon: Argon2<'static>,
    /// A hash of a random password with the same parameters: verified when the
    /// user does not exist, so that answer takes as long as a wrong password.
    dummy_hash: String,
    permits: Semaphore,
}

impl Passwords {
    /// Blocks for one hash (the dummy); call at start-up.
    pub fn new(cost: PasswordCost) -> anyhow::Result<Passwords> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash_with(&argon, &hex::encode(random_bytes::<16>()))
            .context("cannot compute the dummy password hash")?;
        Ok(Passwords {
            argon,
            dummy_hash,
            permits: Semaphore::new(CONCURRENT_HASHES),
        })
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(self: &Arc<Self>, password: String) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || hash_with(&this.argon, &password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Whether `password` matches `hash`; with `None` (no such user) checks
    /// against the dummy hash and answers false, taking the same time.
    pub async fn verify(
        self: &Arc<Self>,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let real = hash.is_some();
            let phc = hash.as_deref().unwrap_or(&this.dummy_hash);
            let parsed = PasswordHash::new(phc)
                .map_err(|e| anyhow::anyhow!("stored password hash is unreadable: {e}"))?;
            let ok = this
                .argon
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok::<bool, anyhow::Error>(real && ok)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| anyhow::anyhow!("cannot encode salt: {e}"))?;
    let hash = argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    Ok(hash.to_string())
}

/// 422 unless `password` has 10 to 1024 characters.
pub fn check_password_rules(password: &str, field: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::Invalid(format!(
            "{field} must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::Invalid(format!(
            "{field} must have at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verifies_and_unknown_user_never_matches() {
        let p = Arc::new(Passwords::new(PasswordCost::INSECURE_FAST_FOR_TESTS).unwrap());
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(
            p.verify("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong horse!".into(), Some(h)).await.unwrap());
        assert!(!p.verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        // An unknown user is verified against the dummy: same algorithm and
        // parameters means the same time as a wrong password.
        let cost = PasswordCost {
            memory_kib: 64,
            iterations: 3,
            parallelism: 1,
        };
        let p = Passwords::new(cost).unwrap();
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        let real = hash_with(&p.argon, "some password").unwrap();
        assert_eq!(params(&p.dummy_hash), params(&real));
        assert_eq!(params(&real), "$argon2id$v=19$m=64,t=3,p=1");
    }

    #[test]
    fn production_parameters_are_the_documented_ones() {
        let c = PasswordCost::PRODUCTION;
        assert_eq!((c.memory_kib, c.iterations, c.parallelism), (19456, 2, 1));
    }

    #[test]
    fn password_length_rules() {
        assert!(check_password_rules("123456789", "password").is_err());
        assert!(check_password_rules("1234567890", "password").is_ok());
        assert!(check_password_rules(&"x".repeat(1025), "password").is_err());
    }

    /// `cargo test -p server --lib production_hash_time -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "measures the production cost; slow by design"]
    async fn production_hash_time() {
        let p = Arc::new(Passwords::new(PasswordCost::PRODUCTION).unwrap());
        let start = std::time::Instant::now();
        let h = p.hash("correct horse battery".into()).await.unwrap();
        let hashed = start.elapsed();
        let start = std::time::Instant::now();
        assert!(
            p.verify("correct horse battery".into(), Some(h))
                .await
                .unwrap()
        );
        println!("hash {hashed:?}, verify {:?}", start.elapsed());
    }
}
