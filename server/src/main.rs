//! `statusmonitor`: parse the command line, set up logging, run.

use clap::Parser;

use server::config::{Cli, Command, Config};

/// See server/Cargo.toml for why not the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Everything this process creates (catalog, time series, spool, backups,
    // the control socket) is for its own user only: the data directory holds
    // the JWT signing secret. See docs/security.md, "Files and permissions".
    #[cfg(unix)]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::try_parse().unwrap_or_else(|e| exit_on_parse_error(e));
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Backup(args)) => exit_on_error(server::ops::run_backup(&args)),
        Some(Command::Restore(args)) => exit_on_error(server::ops::run_restore(&args)),
        Some(Command::Check(args)) => exit_on_error(server::ops::run_check(&args)),
        Some(Command::User(args)) => exit_on_error(server::accounts::cli::run_user(&args)),
        None => cli.serve,
    };
    let result = Config::resolve(args).and_then(|config| {
        init_logging(&config.log);
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("statusmonitor")
            .build()?
            .block_on(server::run(config))
    });
    if let Err(e) = result {
        eprintln!("statusmonitor: error: {e:#}");
        std::process::exit(1);
    }
}

/// `--help` and `--version` print as clap does; a bad command line is one
/// line naming the flag (or its environment variable), exit status 2.
fn exit_on_parse_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let from = env_source(&e).unwrap_or_default();
    eprintln!("statusmonitor: error: {first}{from}");
    std::process::exit(e.exit_code());
}

/// ` (from STATUSMONITOR_X)` when the bad value came from the environment:
/// the flag clap names was not on the command line.
fn env_source(e: &clap::Error) -> Option<String> {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split(' ').next()?;
    let on_command_line = std::env::args_os().any(|a| {
        a.to_str()
            .is_some_and(|a| a == long || a.starts_with(&format!("{long}=")))
    });
    if on_command_line {
        return None;
    }
    let cli = Cli::command();
    let name = long.strip_prefix("--")?;
    let env = std::iter::once(&cli)
        .chain(cli.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(name))?
        .get_env()?;
    Some(format!(" (from {})", env.to_string_lossy()))
}

/// Ends a one-shot command: exit status 0, or 1 with the error.
fn exit_on_error(result: anyhow::Result<()>) -> ! {
    if let Err(e) = result {
        eprintln!("statusmonitor: error: {e:#}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}
