//! Password hashing with Argon2id (parameters in [`PasswordCost`] and
//! `docs/security.md`). Hashing runs on the blocking pool, at most
//! [`CONCURRENT_HASHES`] at a time, each in one of as many working-memory
//! buffers (12 MiB each in production) that are kept and reused.
//!
//! Why keep them: freed, a buffer that size does not go back to the system.
//! glibc raised its mmap threshold after the first such free, so later
//! buffers came from the arena of whichever blocking thread hashed and
//! stayed resident there, one per thread (an idle server measured 57 MiB
//! instead of 36 after a registration and a log-in on two threads).
//! mimalloc, the server's allocator since, does the same: it purges freed
//! memory only on later allocator activity of that thread, and idle
//! blocking threads have none (57-60 MiB idle with buffers freed after each
//! hash, against 34 MiB reused). Reused buffers make the cost fixed and
//! visible instead.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::auth::tokens::random_bytes;
use crate::config::PasswordCost;
use crate::error::ApiError;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// How many hashes may run at once, and how many working-memory buffers
/// (`memory_kib` each) are kept. Two: more would not finish sooner on the
/// two cores of a small home server.
pub const CONCURRENT_HASHES: usize = 2;

pub struct Passwords {
    argon: Argon2<'static>,
    /// A hash of a random password with the same parameters: verified when the
    /// user does not exist, so that answer takes as long as a wrong password.
    dummy_hash: String,
    permits: Semaphore,
    memory: Memory,
}

/// Argon2 working memory, reused: at most [`CONCURRENT_HASHES`] buffers,
/// created when first needed.
#[derive(Default)]
struct Memory(Mutex<Vec<Vec<Block>>>);

impl Memory {
    /// Runs `f` with a buffer of `blocks` blocks, then keeps the buffer.
    fn with<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let taken = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut buffer = taken.unwrap_or_default();
        buffer.resize(blocks, Block::default());
        let out = f(&mut buffer);
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < CONCURRENT_HASHES {
            kept.push(buffer);
        }
        out
    }

    /// Buffers kept.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Passwords {
    /// Blocks for one hash (the dummy); call at start-up.
    pub fn new(cost: PasswordCost) -> anyhow::Result<Passwords> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let memory = Memory::default();
        let dummy_hash = hash_with(&argon, &memory, &hex::encode(random_bytes::<16>()))
            .context("cannot compute the dummy password hash")?;
        Ok(Passwords {
            argon,
            dummy_hash,
            permits: Semaphore::new(CONCURRENT_HASHES),
            memory,
        })
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(self: &Arc<Self>, password: String) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || hash_with(&this.argon, &this.memory, &password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// [`Passwords::hash`] on the calling thread, for the command line.
    pub fn hash_blocking(&self, password: &str) -> anyhow::Result<String> {
        hash_with(&self.argon, &self.memory, password)
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
            let ok = verify_with(&this.memory, &password, &parsed)?;
            Ok::<bool, anyhow::Error>(real && ok)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
    }
}

/// The PHC string of `password` with a fresh salt (what
/// `PasswordHasher::hash_password` makes, in reused memory).
fn hash_with(argon: &Argon2<'_>, memory: &Memory, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| anyhow::anyhow!("cannot encode salt: {e}"))?;
    let output = raw_hash(argon, memory, password, salt.as_salt())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon
            .params()
            .try_into()
            .map_err(|e| anyhow::anyhow!("cannot encode parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`, hashed with the
/// algorithm, version and parameters stored in it (what
/// `PasswordVerifier::verify_password` does, in reused memory). The
/// comparison of the outputs is constant-time.
fn verify_with(memory: &Memory, password: &str, phc: &PasswordHash<'_>) -> anyhow::Result<bool> {
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        anyhow::bail!("stored password hash has no salt or no hash");
    };
    let algorithm = Algorithm::try_from(phc.algorithm).map_err(unreadable)?;
    let version = phc
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(unreadable)?
        .unwrap_or_default();
    let params = Params::try_from(phc).map_err(unreadable)?;
    let argon = Argon2::new(algorithm, version, params);
    Ok(raw_hash(&argon, memory, password, salt)? == expected)
}

fn unreadable(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("stored password hash is unreadable: {e}")
}

fn raw_hash(
    argon: &Argon2<'_>,
    memory: &Memory,
    password: &str,
    salt: Salt<'_>,
) -> anyhow::Result<Output> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("cannot decode salt: {e}"))?;
    let len = argon
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    memory
        .with(argon.params().block_count(), |blocks| {
            Output::init_with(len, |out| {
                argon
                    .hash_password_into_with_memory(
                        password.as_bytes(),
                        salt_bytes,
                        out,
                        &mut *blocks,
                    )
                    .map_err(|_| argon2::password_hash::Error::Crypto)
            })
        })
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
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
        let real = hash_with(&p.argon, &p.memory, "some password").unwrap();
        assert_eq!(params(&p.dummy_hash), params(&real));
        assert_eq!(params(&real), "$argon2id$v=19$m=64,t=3,p=1");
    }

    #[tokio::test]
    async fn hashes_of_the_password_hash_crate_verify_and_memory_is_reused() {
        // A PHC string made by the crate's own PasswordHasher (as stored by
        // earlier versions) verifies, also with parameters other than ours.
        use argon2::password_hash::PasswordHasher;
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(16, 2, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let stored = other
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let p = Arc::new(Passwords::new(PasswordCost::INSECURE_FAST_FOR_TESTS).unwrap());
        assert!(
            p.verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !p.verify("correct horsE".into(), Some(stored))
                .await
                .unwrap()
        );
        // And ours verify with the crate's verifier.
        use argon2::password_hash::PasswordVerifier;
        let ours = p.hash("battery staple".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(p.argon.verify_password(b"battery staple", &parsed).is_ok());
        // Sequential hashes reuse one buffer.
        assert_eq!(p.memory.kept(), 1);
    }

    #[test]
    fn production_parameters_are_the_documented_ones() {
        let c = PasswordCost::PRODUCTION;
        assert_eq!((c.memory_kib, c.iterations, c.parallelism), (12288, 3, 1));
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
