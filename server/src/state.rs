//! `AppState`: what every handler can reach. Cheap to clone (all `Arc`s).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use storage::clock::{Clock, SystemClock};

use crate::config::Config;
use crate::datadir::DataDir;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub data_dir: Arc<DataDir>,
    pub leptos: LeptosOptions,
    pub started: Instant,
    /// "Now" for tokens, cooldowns and retention; a manual clock in tests.
    pub clock: Arc<dyn Clock>,
}

impl AppState {
    /// Opens everything under the data directory, on the system clock.
    pub fn open(config: Config, data_dir: DataDir) -> anyhow::Result<AppState> {
        AppState::open_with_clock(config, data_dir, Arc::new(SystemClock))
    }

    /// Opens everything under the data directory with the given clock.
    pub fn open_with_clock(
        config: Config,
        data_dir: DataDir,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<AppState> {
        Ok(AppState {
            config: Arc::new(config),
            data_dir: Arc::new(data_dir),
            leptos: crate::web::leptos_options(),
            started: Instant::now(),
            clock,
        })
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
