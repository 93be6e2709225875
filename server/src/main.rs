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
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Backup(args)) => exit_on_error(server::ops::run_backup(&args)),
        Some(Command::Restore(args)) => exit_on_error(server::ops::run_restore(&args)),
        Some(Command::Check(args)) => exit_on_error(server::ops::run_check(&args)),
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
