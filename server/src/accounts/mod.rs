//! Account management shared by the admin API (`api::accounts`), the control
//! socket and the `statusmonitor user` command: one-time passwords, the list
//! of accounts, password resets, and what a user who must change their
//! password may still do.

pub mod cli;
pub mod sso;
pub mod totp;

use std::collections::HashMap;

use storage::catalog::{Catalog, CatalogError, Restriction, UserRecord};
use storage::model::ManagedUser;

/// Letters and digits that cannot be mistaken for one another when read
/// aloud or copied by hand (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A one-time password: four groups of five characters (about 99 bits),
/// `xxxxx-xxxxx-xxxxx-xxxxx`.
pub fn one_time_password() -> String {
    use rand::Rng;
    // The thread-local CSPRNG (ChaCha, seeded from the OS), uniform over
    // the alphabet.
    let mut rng = rand::rng();
    let mut out = String::with_capacity(23);
    for i in 0..20 {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    out
}

/// The admin's view of every account, by id.
pub fn managed_users(catalog: &Catalog) -> Result<Vec<ManagedUser>, CatalogError> {
    let counts: HashMap<u64, u64> = catalog.agent_counts()?;
    Ok(catalog
        .users()?
        .iter()
        .map(|u| ManagedUser {
            two_factor: catalog.has_two_factor(u.id),
            ..managed_user(u, counts.get(&u.id).copied().unwrap_or(0))
        })
        .collect())
}

pub fn managed_user(u: &UserRecord, agent_count: u64) -> ManagedUser {
    ManagedUser {
        id: u.id,
        username: u.username.clone(),
        is_admin: u.is_admin,
        disabled: u.disabled,
        must_change_password: u.must_change_password,
        created_ms: u.created_ms,
        last_login_ms: u.last_login_ms,
        agent_count,
        two_factor: false,
    }
}

/// Whether a user under `restriction` may call `path`: who am I, log out,
/// and what lifts the restriction (a new password; two-factor enrolment).
pub fn allowed_while(restriction: Restriction, path: &str) -> bool {
    if matches!(
        path,
        "/api/users/me" | "/api/auth/logout" | "/api/auth/logout-all"
    ) {
        return true;
    }
    match restriction {
        Restriction::ChangePassword => path == "/api/users/me/password",
        Restriction::EnrolTwoFactor => path.starts_with("/api/users/me/two-factor"),
    }
}

/// The refusal for a request outside [`allowed_while`].
pub fn restricted(restriction: Restriction) -> crate::error::ApiError {
    match restriction {
        Restriction::ChangePassword => crate::error::ApiError::PasswordChangeRequired(
            "you logged in with a one-time password: choose a new password first \
             (POST /api/users/me/password)"
                .into(),
        ),
        Restriction::EnrolTwoFactor => crate::error::ApiError::TwoFactorSetupRequired(
            "two-factor log-in is required on this server: set it up first (Account page, \
             or POST /api/users/me/two-factor)"
                .into(),
        ),
    }
}
