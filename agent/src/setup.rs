//! `setup`: the command-line stand-in for the old agent's settings tab. Asks
//! for the server URL and token (unless given), checks them against the
//! server and writes the config file (mode 0600 on Unix: it holds the token).

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, bail};

use crate::config::{AgentArgs, Config, Token, parse_server, parse_token};
use crate::send::{Outcome, Sender, http_agent, transport_error};

/// Runs the dialogue on `input`/`output` (stdin/stderr in the binary).
pub fn setup(
    config: &Config,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> anyhow::Result<()> {
    let server = match &config.server {
        Some(s) => s.clone(),
        None => ask(
            input,
            output,
            "Server URL (e.g. http://monitor.lan:8420): ",
            parse_server,
        )?,
    };
    let token = match &config.token {
        Some(t) => t.clone(),
        None => ask(
            input,
            output,
            "Agent token (shown once in the dashboard): ",
            parse_token,
        )?,
    };
    check_server(&server, &token, config, output)?;
    let path = &config.config_path;
    let mut file = AgentArgs::load(path)?;
    file.server = Some(server);
    file.token = Some(token);
    if let Some(ca) = &config.ca_cert {
        file.ca_cert = Some(ca.path.clone());
    }
    write_config(path, &file)?;
    writeln!(
        output,
        "Wrote {}.\nStart the agent with: statusmonitor-agent run",
        path.display()
    )?;
    Ok(())
}

fn ask<T>(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    prompt: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    for _ in 0..3 {
        write!(output, "{prompt}")?;
        output.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            bail!("no answer on standard input");
        }
        match parse(line.trim()) {
            Ok(v) => return Ok(v),
            Err(e) => writeln!(output, "  {e}")?,
        }
    }
    bail!("no valid answer after three tries")
}

/// `/api/health` must answer, then one real report (host facts included) is
/// sent with the token: accepted means the agent shows up in the dashboard
/// (and a pending token becomes permanent); 401/403 means the token is wrong.
fn check_server(
    server: &str,
    token: &Token,
    config: &Config,
    output: &mut dyn Write,
) -> anyhow::Result<()> {
    let agent = http_agent(config.timeout, config.ca_cert.as_ref());
    let health = format!("{server}/api/health");
    let resp = agent
        .get(&health)
        .call()
        .map_err(|e| anyhow::anyhow!("cannot reach {health}: {}", transport_error(&e)))?;
    if !resp.status().is_success() {
        bail!(
            "{health} answered {}: is this a StatusMonitor server?",
            resp.status()
        );
    }
    writeln!(output, "Server {server} is up. Sending a first report...")?;
    let batch = crate::run::once(config);
    let body = serde_json::to_vec(&batch).context("serialising the report")?;
    match Sender::with_agent(agent, server, token.clone()).post(&body) {
        Outcome::Accepted => writeln!(
            output,
            "Token accepted: this machine is now in the dashboard."
        )?,
        Outcome::TokenRejected { .. } => bail!("{}", crate::error::TOKEN_REJECTED),
        Outcome::Refused { status, error } => {
            bail!("the server refused the test report ({status}): {error}")
        }
        Outcome::Retry { reason, .. } => bail!("the test report was not accepted: {reason}"),
    }
    Ok(())
}

/// Writes the TOML file, readable by the owner only on Unix.
pub fn write_config(path: &Path, file: &AgentArgs) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(file).context("serialising the config")?;
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
