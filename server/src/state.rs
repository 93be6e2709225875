//! `AppState`: what every handler can reach. Cheap to clone (all `Arc`s).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::datadir::DataDir;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub data_dir: Arc<DataDir>,
    pub leptos: LeptosOptions,
    pub started: Instant,
}

impl AppState {
    /// Opens everything under the data directory.
    pub fn open(config: Config, data_dir: DataDir) -> anyhow::Result<AppState> {
        Ok(AppState {
            config: Arc::new(config),
            data_dir: Arc::new(data_dir),
            leptos: crate::web::leptos_options(),
            started: Instant::now(),
        })
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
