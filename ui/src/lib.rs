//! The StatusMonitor dashboard, a Leptos 0.8 app.
//!
//! Compiled twice: with `ssr` into the server, which renders every page to
//! HTML, and with `hydrate` into the wasm bundle, which takes over those pages
//! in the browser. Data comes only from the server's JSON API ([`api`]) and
//! the live WebSocket ([`live`]), both after hydration; the server renders
//! fixed-size placeholders so nothing moves when the data arrives.

#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod chart_data;
pub mod components;
pub mod format;
pub mod live;
pub mod pages;
pub mod recover;
pub mod session;

pub use app::{App, shell};

/// The wasm entry point, called by Leptos' hydration script. (No panic
/// hook: the wasm is built with `panic = "abort"`, and its formatting code
/// costs bundle size; a panic still shows as a wasm trap in the console.)
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(App);
}
