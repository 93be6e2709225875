//! Light and dark themes. By default the page follows the system
//! (`prefers-color-scheme` in the stylesheet); the toggle pins light or dark
//! by setting `data-theme` on `<html>` and remembers the choice in
//! `localStorage`. A tiny inline script in the shell ([`THEME_BOOT`]) applies
//! the stored choice before the first paint, so there is no flash.

use leptos::prelude::*;

/// Runs in `<head>` before the page paints.
pub const THEME_BOOT: &str = "try{var t=localStorage.getItem('sm-theme');\
if(t==='light'||t==='dark')document.documentElement.dataset.theme=t}catch(e){}";

#[cfg(feature = "hydrate")]
const KEY: &str = "sm-theme";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThemeMode {
    #[default]
    System,
    Light,
    Dark,
}

impl ThemeMode {
    fn next(self) -> Self {
        match self {
            ThemeMode::System => ThemeMode::Light,
            ThemeMode::Light => ThemeMode::Dark,
            ThemeMode::Dark => ThemeMode::System,
        }
    }

    fn label(self) -> &'static str {
        match self {
            ThemeMode::System => "Theme: system",
            ThemeMode::Light => "Theme: light",
            ThemeMode::Dark => "Theme: dark",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            ThemeMode::System => "◐",
            ThemeMode::Light => "☀",
            ThemeMode::Dark => "☾",
        }
    }
}

/// The chosen theme, provided by the app; charts rebuild when it changes.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub mode: RwSignal<ThemeMode>,
}

pub fn provide_theme() -> Theme {
    let theme = Theme {
        mode: RwSignal::new(ThemeMode::System),
    };
    provide_context(theme);
    #[cfg(feature = "hydrate")]
    {
        let stored = web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item(KEY).ok().flatten());
        let initial = match stored.as_deref() {
            Some("light") => ThemeMode::Light,
            Some("dark") => ThemeMode::Dark,
            _ => ThemeMode::System,
        };
        // Set after hydration so the server-rendered toggle matches at first.
        Effect::new(move |first: Option<()>| {
            let mode = theme.mode.get();
            if first.is_none() {
                if mode != initial {
                    theme.mode.set(initial);
                }
                return;
            }
            let window = web_sys::window();
            if let Some(root) = window
                .as_ref()
                .and_then(|w| w.document())
                .and_then(|d| d.document_element())
            {
                let _ = match mode {
                    ThemeMode::System => root.remove_attribute("data-theme"),
                    ThemeMode::Light => root.set_attribute("data-theme", "light"),
                    ThemeMode::Dark => root.set_attribute("data-theme", "dark"),
                };
            }
            if let Some(storage) = window.and_then(|w| w.local_storage().ok().flatten()) {
                let _ = match mode {
                    ThemeMode::System => storage.remove_item(KEY),
                    ThemeMode::Light => storage.set_item(KEY, "light"),
                    ThemeMode::Dark => storage.set_item(KEY, "dark"),
                };
            }
        });
    }
    theme
}

/// The button that cycles system → light → dark.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let theme = use_context::<Theme>().unwrap_or(Theme {
        mode: RwSignal::new(ThemeMode::System),
    });
    view! {
        <button
            type="button"
            class="icon-button"
            id="theme-toggle"
            title=move || theme.mode.get().label()
            aria-label=move || theme.mode.get().label()
            on:click=move |_| theme.mode.update(|m| *m = m.next())
        >
            <span aria-hidden="true">{move || theme.mode.get().icon()}</span>
        </button>
    }
}
