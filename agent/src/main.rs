//! `statusmonitor-agent`: parses the command line, installs the log
//! subscriber and hands over to the library. Exit codes: 0 ok, 1 error,
//! 78 (EX_CONFIG) when the server refuses the token, 75 (EX_TEMPFAIL) to be
//! restarted into another build.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use agent::config::{AgentArgs, Cli, Command, Config};
use agent::error::{AgentError, EXIT_CONFIG};
use anyhow::Context;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(AgentError::Upgraded { path }) = e.downcast_ref::<AgentError>() {
                tracing::info!("{e}");
                return restart_into(path);
            }
            if let Some(AgentError::UpdateOffered) = e.downcast_ref::<AgentError>() {
                tracing::info!("{e}");
                return ExitCode::from(agent::error::EXIT_UPGRADED as u8);
            }
            if let Some(AgentError::TokenRejected { .. }) = e.downcast_ref::<AgentError>() {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_CONFIG as u8);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// After `auto_update`: under systemd (which sets `INVOCATION_ID`), exit so
/// that `Restart=on-failure` starts the new build; elsewhere run it in this
/// process's place, with the same arguments.
fn restart_into(path: &std::path::Path) -> ExitCode {
    if std::env::var_os("INVOCATION_ID").is_none() {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            let e = std::process::Command::new(path)
                .args(std::env::args_os().skip(1))
                .exec();
            eprintln!("error: cannot start the new build {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::from(agent::error::EXIT_UPGRADED as u8)
}

/// Logs go to stderr (stdout is for `once` and `simulate` output). Level from
/// `STATUSMONITOR_AGENT_LOG` or `RUST_LOG`, default `info`.
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("STATUSMONITOR_AGENT_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn resolve(args: &AgentArgs) -> anyhow::Result<Config> {
    Ok(Config::resolve(args)?)
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => run(&cli.agent),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Once(args)) => {
            let config = resolve(&args)?;
            let batch = agent::run::once(&config);
            println!(
                "{}",
                serde_json::to_string_pretty(&batch).context("serialising the report")?
            );
            Ok(())
        }
        Some(Command::Setup(args)) => {
            let config = resolve(&args)?;
            let stdin = std::io::stdin();
            agent::setup::setup(&config, &mut stdin.lock(), &mut std::io::stderr())
        }
        Some(Command::InstallService(args)) => {
            let config = resolve(&args.agent)?;
            agent::service::install(&args, &config)
        }
        Some(Command::Simulate(args)) => agent::simulate::simulate(&args),
        Some(Command::Update(args)) => agent::update::command(&args),
    }
}

fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let config = resolve(args)?;
    agent::run::run(&config, Arc::new(AtomicBool::new(false)))?;
    Ok(())
}
