//! Who is logged in, as the whole app sees it. The answer comes from
//! `GET /api/users/me` after hydration (with one silent refresh, so a link
//! opened from a Telegram message — which arrives without the SameSite=Strict
//! cookies — still ends up logged in). Unknown during server rendering.

use leptos::prelude::*;

use crate::api::{self, ApiError, User};

#[derive(Clone, Copy)]
pub struct Session {
    /// `None` while asking; then the user, or `Ok(None)` when logged out.
    pub user: LocalResource<Result<Option<User>, ApiError>>,
}

impl Session {
    /// `Some(true)` logged in, `Some(false)` logged out, `None` not known yet.
    pub fn logged_in(&self) -> Option<bool> {
        self.user.get().map(|r| matches!(r, Ok(Some(_))))
    }

    pub fn username(&self) -> Option<String> {
        match self.user.get() {
            Some(Ok(Some(u))) => Some(u.username),
            _ => None,
        }
    }

    /// Ask again (after login or logout).
    pub fn reload(&self) {
        self.user.refetch();
    }
}

pub fn provide_session() -> Session {
    let session = Session {
        user: LocalResource::new(api::current_user),
    };
    provide_context(session);
    session
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}
