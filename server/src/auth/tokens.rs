//! Opaque random tokens (refresh tokens, agent tokens) and their hashes.
//! A token is a prefix naming its kind plus 32 random bytes in hex (256 bits);
//! only its SHA-256 is stored, so a copy of the catalog cannot be replayed.

use rand::RngCore;
use sha2::{Digest, Sha256};
use storage::catalog::TokenHash;

/// Agent tokens (`X-Agent-Token`).
pub const AGENT_TOKEN_PREFIX: &str = "sma_";
/// Refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "smr_";

/// `N` bytes from the thread-local CSPRNG (ChaCha, seeded from the OS).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A fresh token: `prefix` + 64 hex digits.
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes::<32>()))
}

/// What the catalog stores for `token`.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_long_and_distinct() {
        let a = new_token(AGENT_TOKEN_PREFIX);
        let b = new_token(AGENT_TOKEN_PREFIX);
        assert!(a.starts_with("sma_"));
        assert_eq!(a.len(), 4 + 64);
        assert_ne!(a, b);
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
