//! `statusmonitor user list` and `statusmonitor user reset-password NAME`: a
//! way back in from the server's machine. On a running server they go
//! through its control socket (like `backup`); on a stopped one they open
//! the catalog directly. Whoever may do either may read the data directory
//! anyway, so no password is asked.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use storage::catalog::Catalog;
use storage::model::ManagedUser;

use crate::auth::password::Passwords;
use crate::config::PasswordCost;
use crate::datadir::{DataDir, InUse};

/// `statusmonitor user`.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    /// The data directory: of a running server (asked through its control
    /// socket) or of a stopped one (opened directly).
    #[arg(
        long,
        env = "STATUSMONITOR_DATA_DIR",
        value_name = "DIR",
        global = true
    )]
    pub data_dir: Option<PathBuf>,
    /// The server's TOML file: its `data_dir` is used when --data-dir (or
    /// STATUSMONITOR_DATA_DIR) is not given [default data directory: ./data].
    #[arg(long, env = "STATUSMONITOR_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// List the accounts: name, admin, disabled, last log-in, agents.
    List,
    /// Give an account a one-time password (printed), end its sessions, and
    /// make it choose a new password at the next log-in. Also enables a
    /// disabled account.
    ResetPassword {
        /// The account's name.
        name: String,
    },
}

/// What the control socket answers to `user reset-password NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResetOutcome {
    pub username: String,
    pub one_time_password: String,
    pub sessions_ended: usize,
}

/// The work of `user reset-password` on an open catalog. Returns the
/// outcome and the ended sessions.
pub fn reset_password(
    catalog: &Catalog,
    passwords: &Passwords,
    name: &str,
) -> anyhow::Result<(ResetOutcome, u64, Vec<u64>)> {
    let name = name.trim().to_lowercase();
    let Some(user) = catalog.user_by_name(&name)? else {
        let known: Vec<String> = catalog.users()?.into_iter().map(|u| u.username).collect();
        bail!(
            "there is no account {name:?}; the accounts are: {}",
            known.join(", ")
        );
    };
    let password = super::one_time_password();
    let hash = passwords.hash_blocking(&password)?;
    let mut ended = match catalog.reset_password(user.id, &hash)? {
        Some((_, ended)) => ended,
        None => bail!("the account {name:?} was deleted meanwhile"),
    };
    // A way back in must not end at a disabled account (a locked-out admin).
    if user.disabled
        && let Some((_, more)) = catalog.set_user_disabled(user.id, false)?
    {
        ended.extend(more);
    }
    Ok((
        ResetOutcome {
            username: user.username,
            one_time_password: password,
            sessions_ended: ended.len(),
        },
        user.id,
        ended,
    ))
}

/// `statusmonitor user ...`.
pub fn run_user(args: &UserArgs) -> anyhow::Result<()> {
    let data_dir = crate::config::data_dir_of(args.data_dir.clone(), args.config.as_deref())?;
    if !data_dir.is_dir() {
        bail!("data directory {} does not exist", data_dir.display());
    }
    let request = match &args.command {
        UserCommand::List => "user list".to_string(),
        UserCommand::ResetPassword { name } => format!("user reset-password {}", name.trim()),
    };
    let answer = match DataDir::lock(&data_dir) {
        Ok(dir) => offline(dir.path(), &args.command)?,
        Err(e) if e.downcast_ref::<InUse>().is_some() => ask_server(&data_dir, &request)?,
        Err(e) => return Err(e),
    };
    match &args.command {
        UserCommand::List => {
            let users: Vec<ManagedUser> = serde_json::from_str(&answer)?;
            print!("{}", render_list(&users));
        }
        UserCommand::ResetPassword { .. } => {
            let o: ResetOutcome = serde_json::from_str(&answer)?;
            println!(
                "one-time password for {}: {}\nit must be changed at the next log-in; {} session(s) ended",
                o.username, o.one_time_password, o.sessions_ended
            );
        }
    }
    Ok(())
}

/// Runs `command` on a stopped server's directory; the answer as JSON.
fn offline(dir: &Path, command: &UserCommand) -> anyhow::Result<String> {
    crate::ops::format::upgrade_or_refuse(dir)?;
    let catalog = Catalog::open_in(dir)?;
    match command {
        UserCommand::List => Ok(serde_json::to_string(&super::managed_users(&catalog)?)?),
        UserCommand::ResetPassword { name } => {
            let passwords = Passwords::new(PasswordCost::PRODUCTION)?;
            let (outcome, _, _) = reset_password(&catalog, &passwords, name)?;
            Ok(serde_json::to_string(&outcome)?)
        }
    }
}

/// One table row per account.
fn render_list(users: &[ManagedUser]) -> String {
    let mut out = format!(
        "{:<5} {:<32} {:<5} {:<8} {:<24} {}\n",
        "ID", "NAME", "ADMIN", "DISABLED", "LAST LOG-IN (UTC)", "AGENTS"
    );
    for u in users {
        let last = u
            .last_login_ms
            .map(storage::model::time::format_rfc3339_ms)
            .unwrap_or_else(|| "never".into());
        out.push_str(&format!(
            "{:<5} {:<32} {:<5} {:<8} {:<24} {}\n",
            u.id,
            u.username,
            if u.is_admin { "yes" } else { "no" },
            if u.disabled { "yes" } else { "no" },
            last,
            u.agent_count
        ));
    }
    out
}

/// Sends one `user ...` request to the server holding `data_dir`.
#[cfg(unix)]
fn ask_server(data_dir: &Path, request: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, BufReader, Write};
    let path = data_dir.join(crate::ops::control::SOCKET);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "a server holds {} but its control socket {} does not answer (is it an older \
             version? stop it and run the command again)",
            data_dir.display(),
            path.display()
        )
    })?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    if let Some(msg) = line.strip_prefix("ERR ") {
        bail!("{}", msg.trim());
    }
    match line.strip_prefix("OK ") {
        Some(json) => Ok(json.trim().to_string()),
        None => bail!(
            "unexpected answer from the control socket: {:?}",
            line.trim()
        ),
    }
}

#[cfg(not(unix))]
fn ask_server(data_dir: &Path, _request: &str) -> anyhow::Result<String> {
    bail!(
        "{} is in use by a running server; stop it first",
        data_dir.display()
    )
}

/// The server's side of `user ...` on the control socket: the JSON answer.
pub fn serve_control(state: &crate::state::AppState, request: &str) -> anyhow::Result<String> {
    if request == "list" {
        return Ok(serde_json::to_string(&super::managed_users(
            &state.catalog,
        )?)?);
    }
    if let Some(name) = request.strip_prefix("reset-password ") {
        let (outcome, user_id, ended) = reset_password(&state.catalog, &state.passwords, name)?;
        for session_id in ended {
            state.announce(crate::auth::SecurityEvent::SessionRevoked {
                user_id,
                session_id,
            });
        }
        tracing::info!(user_id, "password reset from the control socket");
        return Ok(serde_json::to_string(&outcome)?);
    }
    bail!("unknown request `user {request}`; known: `user list`, `user reset-password NAME`")
}
