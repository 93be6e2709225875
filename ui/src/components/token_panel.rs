//! The one time an agent token is shown: the token, a live countdown to the
//! end of its 5-minute activation window, copy buttons, and the exact
//! commands to paste on the machine: the one-line install (the server serves
//! the agent and `/install.sh`), the same agent as a container (the server
//! serves its image for `docker load`), and the agent's own command line. It
//! cannot be shown again; regenerating makes a new one.

use leptos::either::EitherOf3;
use leptos::prelude::*;

use crate::components::common::use_now;
use crate::components::copy::CopyButton;
use crate::format;

/// The agent command line for this server and token.
pub fn agent_command(origin: &str, token: &str) -> String {
    format!("statusmonitor-agent --server {origin} --token {token}")
}

/// The one line that installs the agent from this server and starts it.
pub fn install_command(server: &str, token: &str) -> String {
    format!("curl -fsSL {server}/install.sh | sudo sh -s -- --token {token}")
}

/// The one line that loads the agent's image from this server and runs it
/// with the host's processes, network, name and file systems in view
/// (README.md, "The agent": in a container).
pub fn docker_command(server: &str, token: &str) -> String {
    format!(
        "curl -fsSL {server}/download/agent/image/linux-$(uname -m).tar | docker load && \
         docker run -d --name statusmonitor-agent --restart unless-stopped \
         --pid host --network host --uts host -v /:/host:ro \
         -v statusmonitor-agent:/etc/statusmonitor-agent \
         statusmonitor-agent:latest --server {server} --token {token}"
    )
}

/// Re-running the installer upgrades in place and keeps the config.
pub fn upgrade_command(server: &str) -> String {
    format!("curl -fsSL {server}/install.sh | sudo sh")
}

/// The browser's origin (empty on the server side).
pub fn origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

#[component]
pub fn TokenPanel(
    name: String,
    token: String,
    /// End of the activation window (Unix ms), when the server said.
    expires_ms: Option<i64>,
    /// The server's public URL (`--public-url`); the browser's origin without.
    server: Option<String>,
    /// True once the agent has reported (its token is active).
    #[prop(into)]
    active: Signal<bool>,
    on_close: Callback<()>,
) -> impl IntoView {
    let now = use_now(1000);
    let server = server.unwrap_or_else(origin);
    let command = agent_command(&server, &token);
    let install = install_command(&server, &token);
    let install_text = Signal::derive({
        let install = install.clone();
        move || install.clone()
    });
    let docker = docker_command(&server, &token);
    let docker_text = Signal::derive({
        let docker = docker.clone();
        move || docker.clone()
    });
    // Without a server figure, count from when the panel opened.
    let opened = format::now_ms();
    let expires = expires_ms.unwrap_or(opened + 5 * 60 * 1000);
    let remaining = move || expires - now.get();
    let token_text = Signal::derive({
        let token = token.clone();
        move || token.clone()
    });
    let command_text = Signal::derive({
        let command = command.clone();
        move || command.clone()
    });

    view! {
        <section class="card token-panel" aria-labelledby="token-title" id="token-panel">
            <div class="token-head">
                <h2 id="token-title">"Connect " <em>{name}</em></h2>
                <button type="button" class="button secondary small" id="token-done"
                    on:click=move |_| on_close.run(())>"Done"</button>
            </div>
            <p class="warn-text">
                <strong>"This token is shown only once."</strong>
                " Copy it now: the server keeps only a hash of it."
            </p>
            <div class="token-status" aria-live="polite">
                {move || if active.get() {
                    EitherOf3::A(view! { <p class="ok-text" id="token-active">"✓ The agent is connected. Its token is now permanent."</p> })
                } else if remaining() > 0 {
                    EitherOf3::B(view! {
                        <p>
                            "Start the agent within "
                            <strong class="countdown" id="token-countdown">{format::countdown(remaining())}</strong>
                            ": a token nobody uses for 5 minutes expires."
                        </p>
                    })
                } else {
                    EitherOf3::C(view! { <p class="error" id="token-expired">"This token has expired. Regenerate it to get a new one."</p> })
                }}
            </div>
            <label class="field-label" for="agent-token">"Token"</label>
            <div class="copy-row">
                <input id="agent-token" class="mono" readonly value=token.clone() />
                <CopyButton text=token_text what="token" id="copy-token" />
            </div>
            <label class="field-label" for="agent-install">"Install it on the machine (Linux, as root)"</label>
            <div class="copy-row">
                <input id="agent-install" class="mono" readonly value=install.clone() />
                <CopyButton text=install_text what="install command" id="copy-install" />
            </div>
            <p class="muted small">
                "Downloads the agent from this server, checks it, and starts it as a service. Run it again later to upgrade."
            </p>
            <label class="field-label" for="agent-docker">"Or run it in a container (Docker or Podman)"</label>
            <div class="copy-row">
                <input id="agent-docker" class="mono" readonly value=docker.clone() />
                <CopyButton text=docker_text what="container command" id="copy-docker" />
            </div>
            <label class="field-label" for="agent-command">"Or run the agent yourself"</label>
            <div class="copy-row">
                <input id="agent-command" class="mono" readonly value=command.clone() />
                <CopyButton text=command_text what="command" id="copy-command" />
            </div>
            <p class="muted small">
                "Add " <code>"--interval 5s"</code> " to change how often it reports."
            </p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_line_loads_the_image_from_this_server_and_passes_the_token() {
        let line = docker_command("http://nas:8420", "sma_abc");
        assert!(line.starts_with(
            "curl -fsSL http://nas:8420/download/agent/image/linux-$(uname -m).tar | docker load && docker run -d "
        ));
        assert!(line.contains(" --pid host --network host --uts host -v /:/host:ro "));
        assert!(
            line.ends_with(" statusmonitor-agent:latest --server http://nas:8420 --token sma_abc")
        );
        assert!(!line.contains("  "), "{line}");
    }
}
