//! The server's configuration: flags, then `STATUSMONITOR_*` environment
//! variables, then an optional TOML file, then defaults. Nothing is required.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use storage::model::time::parse_duration_ms;

/// Version string for `--version`: crate version and git revision.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("STATUSMONITOR_GIT_REVISION"),
    ")"
);

/// `statusmonitor`: self-hosted server monitoring in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "statusmonitor",
    version = VERSION,
    about,
    long_about = None,
    // `statusmonitor --data-dir /srv backup` must not back up ./data: the
    // settings of `serve` given before a subcommand are an error.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Back up the data directory, also while the server runs, into a .tar.zst.
    Backup(crate::ops::BackupArgs),
    /// Restore a backup into an empty (or, with --force, any) data directory.
    Restore(crate::ops::RestoreArgs),
    /// Verify checksums and structure of a stopped server's data directory.
    Check(crate::ops::CheckArgs),
    /// List accounts, or reset a password (a way back in), on a running or stopped server.
    User(crate::accounts::cli::UserArgs),
}

/// Settings of `statusmonitor serve`. Every one is optional; see [`Config`]
/// for the defaults. The same struct reads the TOML file (keys are the field
/// names; an unknown key is an error, so a typo does not silently fall back
/// to a default): a new setting is one field here and one line in
/// [`Config::resolve`].
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys in snake_case).
    #[arg(long, env = "STATUSMONITOR_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address and port to serve the dashboard and API on [default: 0.0.0.0:8420].
    #[arg(long, env = "STATUSMONITOR_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory that holds everything the server keeps [default: ./data].
    #[arg(long, env = "STATUSMONITOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Let anyone create an account, also after the first one exists.
    #[arg(long, env = "STATUSMONITOR_OPEN_REGISTRATION", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub open_registration: Option<bool>,
    /// Secret that signs session tokens; generated and kept in the data directory when unset.
    #[arg(
        long,
        env = "STATUSMONITOR_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Telegram bot token used to send alerts (from @BotFather).
    #[arg(
        long,
        env = "STATUSMONITOR_TELEGRAM_BOT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub telegram_bot_token: Option<String>,
    /// Base URL of the Telegram Bot API [default: https://api.telegram.org].
    #[arg(long, env = "STATUSMONITOR_TELEGRAM_API_BASE", value_name = "URL", value_parser = http_url_arg)]
    pub telegram_api_base: Option<String>,
    /// Base URL of the Pushover API [default: https://api.pushover.net].
    #[arg(long, env = "STATUSMONITOR_PUSHOVER_API_BASE", value_name = "URL", value_parser = http_url_arg)]
    pub pushover_api_base: Option<String>,
    /// PEM file of extra CA certificates trusted for email channels' SMTP servers (a home lab's own mail relay).
    #[arg(long, env = "STATUSMONITOR_SMTP_CA_FILE", value_name = "FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// URL people open the dashboard at, used in links of notifications [default: http://<host>:<port>].
    #[arg(long, env = "STATUSMONITOR_PUBLIC_URL", value_name = "URL", value_parser = http_url_arg)]
    pub public_url: Option<String>,
    /// Alert history kept per user; older events are dropped [default: 10000].
    #[arg(long, env = "STATUSMONITOR_ALERT_HISTORY_LIMIT", value_name = "N")]
    pub alert_history_limit: Option<u64>,
    /// Time limit of one notification attempt (Telegram, webhook) [default: 10s].
    #[arg(long, env = "STATUSMONITOR_NOTIFY_TIMEOUT", value_name = "DURATION", value_parser = duration_arg)]
    pub notify_timeout: Option<String>,
    /// Longest wait before each retry of a failed notification (the wait is drawn at random up to it), comma-separated [default: 1s,4s,16s].
    #[arg(
        long,
        env = "STATUSMONITOR_NOTIFY_RETRY_DELAYS",
        value_name = "DURATIONS",
        value_parser = delays_arg
    )]
    pub notify_retry_delays: Option<String>,
    /// How often agents are checked for silence (offline rules) [default: 5s].
    #[arg(
        long,
        env = "STATUSMONITOR_OFFLINE_CHECK_INTERVAL",
        value_name = "DURATION",
        value_parser = duration_arg
    )]
    pub offline_check_interval: Option<String>,
    /// How long 5-second samples are kept [default: 24h].
    #[arg(long, env = "STATUSMONITOR_RAW_RETENTION", value_name = "DURATION", value_parser = duration_arg)]
    pub raw_retention: Option<String>,
    /// How long 1-minute aggregates are kept [default: 7d].
    #[arg(long, env = "STATUSMONITOR_MINUTE_RETENTION", value_name = "DURATION", value_parser = duration_arg)]
    pub minute_retention: Option<String>,
    /// How long 1-hour aggregates are kept [default: 365d].
    #[arg(long, env = "STATUSMONITOR_HOUR_RETENTION", value_name = "DURATION", value_parser = duration_arg)]
    pub hour_retention: Option<String>,
    /// Time one history query may take before it is stopped with 503 [default: 10s].
    #[arg(
        long,
        env = "STATUSMONITOR_HISTORY_QUERY_TIMEOUT",
        value_name = "DURATION",
        value_parser = duration_arg
    )]
    pub history_query_timeout: Option<String>,
    /// History queries one user may run at once; more wait up to 1 s for a slot, then get 429 [default: 4].
    #[arg(long, env = "STATUSMONITOR_HISTORY_QUERIES_PER_USER", value_name = "N")]
    pub history_queries_per_user: Option<usize>,
    /// History queries the whole server works on at once, on low-priority threads; more wait up to 5 s, then get 503 [default: half the cores, at least 1].
    #[arg(long, env = "STATUSMONITOR_MAX_HISTORY_QUERIES", value_name = "N")]
    pub max_history_queries: Option<usize>,
    /// Largest accepted request body, compressed or not, in bytes [default: 1048576].
    #[arg(long, env = "STATUSMONITOR_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Log filter, e.g. `info` or `statusmonitor=debug,tower_http=debug` [default: info].
    #[arg(long, env = "STATUSMONITOR_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Serve `GET /metrics` in the Prometheus text format (needs `metrics_token`) [default: false].
    #[arg(long, env = "STATUSMONITOR_METRICS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub metrics: Option<bool>,
    /// Bearer token a scraper must send to `GET /metrics` (at least 16 characters).
    #[arg(
        long,
        env = "STATUSMONITOR_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// Prometheus remote_write endpoint to copy every ingested sample to; repeat (env: comma-separated) for several.
    #[arg(
        long,
        env = "STATUSMONITOR_REMOTE_WRITE_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub remote_write_url: Vec<String>,
    /// Bearer token sent to the remote_write endpoints, if they need one.
    #[arg(
        long,
        env = "STATUSMONITOR_REMOTE_WRITE_BEARER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub remote_write_bearer_token: Option<String>,
    /// Most bytes each endpoint's on-disk queue holds while it is unreachable; the oldest go first [default: 268435456].
    #[arg(
        long,
        env = "STATUSMONITOR_REMOTE_WRITE_QUEUE_BYTES",
        value_name = "BYTES"
    )]
    pub remote_write_queue_bytes: Option<u64>,
    /// Time a connection has to send a complete request head, from opening or from its previous answer; closes silent, dripping and idle connections [default: 30s].
    #[arg(
        long,
        env = "STATUSMONITOR_REQUEST_HEADER_TIMEOUT",
        value_name = "DURATION",
        value_parser = duration_arg
    )]
    pub request_header_timeout: Option<String>,
    /// Connections one address may hold open before any of their requests is authenticated; 0: no limit [default: 64].
    #[arg(
        long,
        env = "STATUSMONITOR_MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP",
        value_name = "N"
    )]
    pub max_unauthenticated_connections_per_ip: Option<usize>,
    /// Free space the data directory's file system must keep: below it ingest is refused with 507, so the catalog can still commit [default: 268435456].
    #[arg(long, env = "STATUSMONITOR_MIN_FREE_BYTES", value_name = "BYTES")]
    pub min_free_bytes: Option<u64>,
    /// Private address ranges (CIDRs, comma-separated) every user's webhooks may reach, e.g. a home lab's 192.168.1.0/24 [default: none].
    #[arg(
        long,
        env = "STATUSMONITOR_OUTBOUND_ALLOW",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub outbound_allow: Vec<String>,
    /// Most agents one account may have; the admin is exempt [default: 500].
    #[arg(long, env = "STATUSMONITOR_MAX_AGENTS_PER_USER", value_name = "N")]
    pub max_agents_per_user: Option<u64>,
    /// Most alert rules one account may have; the admin is exempt [default: 1000].
    #[arg(long, env = "STATUSMONITOR_MAX_RULES_PER_USER", value_name = "N")]
    pub max_rules_per_user: Option<u64>,
    /// Single sign-on through a reverse proxy: the request header that names the logged-in user (e.g. Remote-User), honoured only from --trusted-proxies [default: off].
    #[arg(long, env = "STATUSMONITOR_TRUSTED_AUTH_HEADER", value_name = "HEADER")]
    pub trusted_auth_header: Option<String>,
    /// Addresses of the reverse proxies (CIDRs, comma-separated) whose --trusted-auth-header is believed; needed with it.
    #[arg(
        long,
        env = "STATUSMONITOR_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Create the account of a name the proxy vouches for on first sight (else it must exist).
    #[arg(long, env = "STATUSMONITOR_TRUSTED_AUTH_CREATE_USERS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub trusted_auth_create_users: Option<bool>,
    /// Serve the agent binaries (`statusmonitor-agent-linux-<arch>` files) of this directory at /download/agent/ instead of the ones built into the server [default: the built-in ones].
    #[arg(long, env = "STATUSMONITOR_AGENT_BINARIES", value_name = "DIR")]
    pub agent_binaries: Option<PathBuf>,
    /// Most uptime checks one account may have; the admin is exempt [default: 100].
    #[arg(long, env = "STATUSMONITOR_MAX_CHECKS_PER_USER", value_name = "N")]
    pub max_checks_per_user: Option<u64>,
    /// Uptime checks that may run at the same time; a check whose target
    /// hangs holds one until its timeout [default: 64].
    #[arg(long, env = "STATUSMONITOR_CHECK_CONCURRENCY", value_name = "N")]
    pub check_concurrency: Option<u32>,
}

/// The resolved configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub open_registration: bool,
    pub jwt_secret: Option<Secret>,
    pub telegram_bot_token: Option<Secret>,
    pub telegram_api_base: String,
    pub pushover_api_base: String,
    /// The certificates of `--smtp-ca-file`, each PEM block as read.
    pub smtp_ca_pem: Vec<Vec<u8>>,
    pub public_url: Option<String>,
    /// Newest alert events kept per user.
    pub alert_history_limit: u64,
    /// Time limit of one notification attempt.
    pub notify_timeout_ms: i64,
    /// Waits before the retries of a failed notification (one attempt more
    /// than there are delays).
    pub notify_retry_delays_ms: Vec<i64>,
    /// Period of the offline check.
    pub offline_check_interval_ms: i64,
    pub raw_retention_ms: i64,
    pub minute_retention_ms: i64,
    pub hour_retention_ms: i64,
    /// Time budget of one history query.
    pub history_query_timeout_ms: i64,
    /// History queries one user may run at once.
    pub history_queries_per_user: usize,
    /// History queries doing work at once, server-wide.
    pub max_history_queries: usize,
    pub max_body_bytes: usize,
    pub log: String,
    /// Argon2id cost for new password hashes. Not a flag: production always
    /// uses [`PasswordCost::PRODUCTION`]; tests lower it so the suite does not
    /// spend minutes hashing.
    pub password_cost: PasswordCost,
    /// `GET /metrics` is served (else 404).
    pub metrics: bool,
    /// The bearer token `GET /metrics` requires; always set when `metrics` is.
    pub metrics_token: Option<Secret>,
    /// remote_write endpoints; empty: remote write is off.
    pub remote_write_urls: Vec<String>,
    pub remote_write_bearer_token: Option<Secret>,
    /// Bound of each endpoint's on-disk queue.
    pub remote_write_queue_bytes: u64,
    /// See [`crate::serve::ConnectionLimits::header_timeout`].
    pub request_header_timeout_ms: i64,
    /// See [`crate::serve::ConnectionLimits::max_unauthenticated_per_ip`].
    pub max_unauthenticated_connections_per_ip: usize,
    /// Ingest is refused (507) while the data directory's file system has
    /// less free space than this (see [`crate::disk`]).
    pub min_free_bytes: u64,
    /// Ranges the outbound guard opens to every user (see `outbound.rs`).
    pub outbound_allow: Vec<ipnet::IpNet>,
    /// Per-account limits; the admin is exempt.
    pub max_agents_per_user: u64,
    pub max_rules_per_user: u64,
    /// Single sign-on through a reverse proxy (see `crate::accounts::sso`).
    pub trusted_auth: Option<crate::accounts::sso::TrustedAuth>,
    /// Where `/download/agent/` takes the agents from; `None`: the built-in ones.
    pub agent_binaries: Option<PathBuf>,
    pub max_checks_per_user: u64,
    /// Uptime checks running at once.
    pub check_concurrency: u32,
}

/// Argon2id parameters (see `docs/security.md`). Existing hashes carry their
/// own parameters in the PHC string, so changing these never locks anyone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl PasswordCost {
    /// One of OWASP's equivalent Argon2id settings: 12 MiB, 3 passes, 1
    /// lane (as strong as 19 MiB with 2 passes; the memory stays resident in
    /// a small appliance, so the lower-memory one of the two).
    pub const PRODUCTION: PasswordCost = PasswordCost {
        memory_kib: 12 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// The cheapest parameters Argon2 accepts. For tests only.
    pub const INSECURE_FAST_FOR_TESTS: PasswordCost = PasswordCost {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

/// A secret setting (a signing key, a token). The code that needs the value
/// asks for it with [`Secret::expose`]; `Debug` shows `"<set>"`, so a logged
/// `Config` carries no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt("<set>", f)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::resolve(ServeArgs::default()).expect("defaults are valid")
    }
}

impl Config {
    /// Merges flags/env (already in `args`, clap gives flags precedence) over
    /// the TOML file named by `args.config`, over the defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        // Where a setting the flags and the environment left unset came
        // from, for its error message.
        let in_file = |name: &str| match &args.config {
            Some(path) => format!("{name} (in config file {})", path.display()),
            None => name.to_string(),
        };
        let retention = |name: &str, arg: Option<String>, file: Option<String>, default: &str| {
            let name = if arg.is_none() && file.is_some() {
                in_file(name)
            } else {
                name.to_string()
            };
            let text = arg.or(file).unwrap_or_else(|| default.to_string());
            let ms = positive_duration_ms(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            Ok::<i64, anyhow::Error>(ms)
        };
        let url = |name: &str, arg: Option<String>, file: Option<String>| {
            let name = if arg.is_none() && file.is_some() {
                in_file(name)
            } else {
                name.to_string()
            };
            arg.or(file)
                .map(|u| http_url_arg(&u).map_err(|e| anyhow::anyhow!("{name}: {e}")))
                .transpose()
        };
        let delays_name =
            if args.notify_retry_delays.is_none() && file.notify_retry_delays.is_some() {
                in_file("notify_retry_delays")
            } else {
                "notify_retry_delays".to_string()
            };
        let config = Config {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8420))),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            open_registration: args
                .open_registration
                .or(file.open_registration)
                .unwrap_or(false),
            jwt_secret: args.jwt_secret.or(file.jwt_secret).map(Secret::from),
            telegram_bot_token: args
                .telegram_bot_token
                .or(file.telegram_bot_token)
                .map(Secret::from),
            telegram_api_base: url(
                "telegram_api_base",
                args.telegram_api_base,
                file.telegram_api_base,
            )?
            .unwrap_or_else(|| "https://api.telegram.org".to_string())
            .trim_end_matches('/')
            .to_string(),
            pushover_api_base: url(
                "pushover_api_base",
                args.pushover_api_base,
                file.pushover_api_base,
            )?
            .unwrap_or_else(|| "https://api.pushover.net".to_string())
            .trim_end_matches('/')
            .to_string(),
            smtp_ca_pem: match args.smtp_ca_file.or(file.smtp_ca_file) {
                Some(path) => pem_blocks(&path)?,
                None => Vec::new(),
            },
            public_url: url("public_url", args.public_url, file.public_url)?
                .map(|u| u.trim_end_matches('/').to_string()),
            alert_history_limit: args
                .alert_history_limit
                .or(file.alert_history_limit)
                .unwrap_or(10_000),
            notify_timeout_ms: retention(
                "notify_timeout",
                args.notify_timeout,
                file.notify_timeout,
                "10s",
            )?,
            notify_retry_delays_ms: parse_delays(
                &args
                    .notify_retry_delays
                    .or(file.notify_retry_delays)
                    .unwrap_or_else(|| "1s,4s,16s".to_string()),
            )
            .map_err(|e| anyhow::anyhow!("{delays_name}: {e}"))?,
            offline_check_interval_ms: retention(
                "offline_check_interval",
                args.offline_check_interval,
                file.offline_check_interval,
                "5s",
            )?,
            raw_retention_ms: retention(
                "raw_retention",
                args.raw_retention,
                file.raw_retention,
                "24h",
            )?,
            minute_retention_ms: retention(
                "minute_retention",
                args.minute_retention,
                file.minute_retention,
                "7d",
            )?,
            hour_retention_ms: retention(
                "hour_retention",
                args.hour_retention,
                file.hour_retention,
                "365d",
            )?,
            history_query_timeout_ms: retention(
                "history_query_timeout",
                args.history_query_timeout,
                file.history_query_timeout,
                "10s",
            )?,
            history_queries_per_user: args
                .history_queries_per_user
                .or(file.history_queries_per_user)
                .unwrap_or(4),
            max_history_queries: args
                .max_history_queries
                .or(file.max_history_queries)
                .unwrap_or_else(crate::api::history::queries::default_max_running),
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1 << 20),
            log: args.log.or(file.log).unwrap_or_else(|| "info".to_string()),
            password_cost: PasswordCost::PRODUCTION,
            metrics: args.metrics.or(file.metrics).unwrap_or(false),
            metrics_token: args.metrics_token.or(file.metrics_token).map(Secret::from),
            remote_write_urls: if args.remote_write_url.is_empty() {
                file.remote_write_url
            } else {
                args.remote_write_url
            },
            remote_write_bearer_token: args
                .remote_write_bearer_token
                .or(file.remote_write_bearer_token)
                .map(Secret::from),
            remote_write_queue_bytes: args
                .remote_write_queue_bytes
                .or(file.remote_write_queue_bytes)
                .unwrap_or(256 << 20),
            request_header_timeout_ms: retention(
                "request_header_timeout",
                args.request_header_timeout,
                file.request_header_timeout,
                "30s",
            )?,
            max_unauthenticated_connections_per_ip: args
                .max_unauthenticated_connections_per_ip
                .or(file.max_unauthenticated_connections_per_ip)
                .unwrap_or(64),
            min_free_bytes: args
                .min_free_bytes
                .or(file.min_free_bytes)
                .unwrap_or(256 << 20),
            outbound_allow: crate::outbound::parse_allow_list(
                &if args.outbound_allow.is_empty() {
                    file.outbound_allow
                } else {
                    args.outbound_allow
                }
                .join(","),
            )
            .map_err(|e| anyhow::anyhow!("outbound_allow: {e}"))?,
            max_agents_per_user: args
                .max_agents_per_user
                .or(file.max_agents_per_user)
                .unwrap_or(500),
            max_rules_per_user: args
                .max_rules_per_user
                .or(file.max_rules_per_user)
                .unwrap_or(1_000),
            trusted_auth: crate::accounts::sso::TrustedAuth::resolve(
                args.trusted_auth_header.or(file.trusted_auth_header),
                if args.trusted_proxies.is_empty() {
                    file.trusted_proxies
                } else {
                    args.trusted_proxies
                },
                args.trusted_auth_create_users
                    .or(file.trusted_auth_create_users)
                    .unwrap_or(false),
            )?,
            agent_binaries: args.agent_binaries.or(file.agent_binaries),
            max_checks_per_user: args
                .max_checks_per_user
                .or(file.max_checks_per_user)
                .unwrap_or(100),
            check_concurrency: args
                .check_concurrency
                .or(file.check_concurrency)
                .unwrap_or(64),
        };
        crate::metrics::check_config(&config)?;
        crate::remote_write::check_config(&config)?;
        if config.alert_history_limit == 0 {
            bail!("alert_history_limit must be at least 1");
        }
        if config.history_queries_per_user == 0 {
            bail!("history_queries_per_user must be at least 1");
        }
        if config.max_history_queries == 0 {
            bail!("max_history_queries must be at least 1");
        }
        if config.max_agents_per_user == 0 || config.max_rules_per_user == 0 {
            bail!("max_agents_per_user and max_rules_per_user must be at least 1");
        }
        if config.max_checks_per_user == 0 || !(1..=1024).contains(&config.check_concurrency) {
            bail!("max_checks_per_user must be at least 1 and check_concurrency 1 to 1024");
        }
        if config.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        if let Some(secret) = &config.jwt_secret
            && secret.expose().len() < 32
        {
            bail!("jwt_secret must be at least 32 characters");
        }
        Ok(config)
    }

    /// What the accept loop enforces per connection.
    pub fn connection_limits(&self) -> crate::serve::ConnectionLimits {
        crate::serve::ConnectionLimits {
            header_timeout: std::time::Duration::from_millis(
                u64::try_from(self.request_header_timeout_ms).unwrap_or(30_000),
            ),
            max_unauthenticated_per_ip: self.max_unauthenticated_connections_per_ip,
        }
    }

    /// The URL to print at start and to put in notification links.
    pub fn dashboard_url(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let host = if self.listen.ip().is_unspecified() {
            "localhost".to_string()
        } else if self.listen.is_ipv6() {
            format!("[{}]", self.listen.ip())
        } else {
            self.listen.ip().to_string()
        };
        format!("http://{host}:{}", self.listen.port())
    }
}

/// `1s,4s,16s` → `[1000, 4000, 16000]`; an empty string means no retries.
/// The error does not name the setting: the caller knows where it came from.
fn parse_delays(text: &str) -> Result<Vec<i64>, String> {
    let delays = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(parse_duration_ms)
        .collect::<Result<Vec<i64>, String>>()?;
    if delays.len() > 10 {
        return Err("at most 10 retries".to_string());
    }
    Ok(delays)
}

/// A duration setting: `250ms`, `5s`, `24h`, `7d` …, longer than zero.
fn positive_duration_ms(text: &str) -> Result<i64, String> {
    let ms = parse_duration_ms(text)?;
    if ms <= 0 {
        return Err(format!("`{}` must be longer than zero", text.trim()));
    }
    Ok(ms)
}

/// clap's check of a duration flag (or its variable) at parse time, so a bad
/// `--raw-retention` fails naming the flag before anything opens. The text is
/// kept: [`Config::resolve`] converts it, with the file's values.
fn duration_arg(text: &str) -> Result<String, String> {
    positive_duration_ms(text).map(|_| text.to_string())
}

/// clap's check of `--notify-retry-delays` at parse time.
fn delays_arg(text: &str) -> Result<String, String> {
    parse_delays(text).map(|_| text.to_string())
}

/// An `http://` or `https://` URL with a host (`--public-url`,
/// `--telegram-api-base`), checked at parse time.
fn http_url_arg(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`{text}` must be an http:// or https:// URL with a host"
        ));
    }
    Ok(text.to_string())
}

/// The data directory of `backup`, `restore` and `check`, found as `serve`
/// finds it: the flag or `STATUSMONITOR_DATA_DIR` (both in `flag`), then the
/// `data_dir` of the TOML file (`--config` or `STATUSMONITOR_CONFIG`), then
/// `./data`. The file is read whole, so a typo in it is an error here too.
pub fn data_dir_of(flag: Option<PathBuf>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    let file = match config {
        Some(path) => read_file(path)?,
        None => ServeArgs::default(),
    };
    Ok(flag
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("./data")))
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's message spans several lines with a source excerpt; keep the
        // first, and name the key whose value is wrong.
        let msg = e.message().to_string();
        let key = e.span().and_then(|span| key_at(&text, span.start));
        match key {
            Some(key) if !msg.contains(&format!("`{key}`")) => {
                anyhow::anyhow!("config file {} is invalid: {key}: {msg}", path.display())
            }
            _ => anyhow::anyhow!("config file {} is invalid: {msg}", path.display()),
        }
    })
}

/// The key of the `key = value` line that holds byte `at` of `text`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| key.to_string())
}

/// The `CERTIFICATE` blocks of the PEM file at `path`; none is an error.
fn pem_blocks(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("smtp_ca_file: cannot read {}", path.display()))?;
    const END: &str = "-----END CERTIFICATE-----";
    let blocks: Vec<Vec<u8>> = text
        .split_inclusive(END)
        .filter_map(|b| b.find("-----BEGIN CERTIFICATE-----").map(|i| &b[i..]))
        .filter(|b| b.ends_with(END))
        .map(|b| format!("{b}\n").into_bytes())
        .collect();
    if blocks.is_empty() {
        bail!("smtp_ca_file: {} holds no PEM certificate", path.display());
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_need_nothing() {
        let c = Config::resolve(ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8420");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.raw_retention_ms, 86_400_000);
        assert_eq!(c.hour_retention_ms, 365 * 86_400_000);
        assert!(!c.open_registration);
        assert_eq!(c.dashboard_url(), "http://localhost:8420");
        assert_eq!(c.alert_history_limit, 10_000);
        assert_eq!(c.notify_retry_delays_ms, vec![1_000, 4_000, 16_000]);
        assert_eq!(c.offline_check_interval_ms, 5_000);
        assert!(c.outbound_allow.is_empty());
        assert_eq!(c.max_agents_per_user, 500);
        assert_eq!(c.max_rules_per_user, 1_000);
    }

    #[test]
    fn outbound_allow_parses_from_flag_and_file_and_names_a_bad_range() {
        let args = ServeArgs {
            outbound_allow: vec!["192.168.1.0/24".into(), "10.0.0.7".into()],
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        let shown: Vec<String> = c.outbound_allow.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["192.168.1.0/24", "10.0.0.7/32"]);
        let f = file("outbound_allow = [\"fd00::/8\"]\n");
        let args = ServeArgs {
            config: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(Config::resolve(args).unwrap().outbound_allow.len(), 1);
        let args = ServeArgs {
            outbound_allow: vec!["home".into()],
            ..Default::default()
        };
        let err = format!("{:#}", Config::resolve(args).unwrap_err());
        assert!(
            err.starts_with("outbound_allow") && err.contains("`home`"),
            "{err}"
        );
    }

    #[test]
    fn retry_delays_parse_and_name_the_setting() {
        assert_eq!(parse_delays("10ms, 20ms").unwrap(), vec![10, 20]);
        assert!(parse_delays("").unwrap().is_empty());
        assert!(parse_delays("1s,soon").is_err());
        let args = ServeArgs {
            notify_retry_delays: Some("1s,soon".into()),
            ..Default::default()
        };
        let err = format!("{:#}", Config::resolve(args).unwrap_err());
        assert!(err.starts_with("notify_retry_delays"), "{err}");
    }

    #[test]
    fn flags_win_over_file() {
        let f = file(
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\nraw_retention = \"12h\"\n",
        );
        let args = ServeArgs {
            config: Some(f.path().to_path_buf()),
            data_dir: Some("/from/flag".into()),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.raw_retention_ms, 12 * 3_600_000);
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let f = file("listne = \"127.0.0.1:9000\"\n");
        let args = ServeArgs {
            config: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        let err = format!("{:#}", Config::resolve(args).unwrap_err());
        assert!(err.contains("unknown field `listne`"), "{err}");
    }

    #[test]
    fn the_file_reads_every_kind_of_setting_and_refuses_config() {
        let f = file(
            "open_registration = true\nremote_write_url = [\"http://a.example/w\"]\n\
             max_body_bytes = 4096\nnotify_retry_delays = \"\"\n",
        );
        let args = ServeArgs {
            config: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert!(c.open_registration);
        assert_eq!(c.remote_write_urls, ["http://a.example/w"]);
        assert_eq!(c.max_body_bytes, 4096);
        assert!(c.notify_retry_delays_ms.is_empty());
        let f = file("config = \"other.toml\"\n");
        let args = ServeArgs {
            config: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        let err = format!("{:#}", Config::resolve(args).unwrap_err());
        assert!(err.contains("unknown field `config`"), "{err}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let args = ServeArgs {
            jwt_secret: Some("jwt-secret-0123456789abcdef0123456789".into()),
            telegram_bot_token: Some("123:telegram-token".into()),
            metrics: Some(true),
            metrics_token: Some("metrics-token-0123456789".into()),
            remote_write_url: vec!["https://rw.example/write".into()],
            remote_write_bearer_token: Some("remote-write-token".into()),
            ..Default::default()
        };
        let shown = format!("{:?}", Config::resolve(args).unwrap());
        for secret in [
            "jwt-secret",
            "telegram-token",
            "metrics-token",
            "remote-write-token",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("rw.example"), "the rest is shown: {shown}");
    }

    #[test]
    fn a_secret_shows_as_set() {
        let s = Some(Secret::from("hunter2-hunter2".to_string()));
        assert_eq!(format!("{s:?}"), r#"Some("<set>")"#);
        assert_eq!(s.as_ref().map(Secret::expose), Some("hunter2-hunter2"));
    }

    #[test]
    fn malformed_toml_is_an_error() {
        let f = file("listen = \n");
        let args = ServeArgs {
            config: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        let err = format!("{:#}", Config::resolve(args).unwrap_err());
        assert!(err.contains("is invalid"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn bad_retention_names_the_setting() {
        let args = ServeArgs {
            raw_retention: Some("12 parsecs".into()),
            ..Default::default()
        };
        let err = format!("{:#}", Config::resolve(args).unwrap_err());
        assert!(err.starts_with("raw_retention"), "{err}");
    }

    proptest::proptest! {
        /// Any text in a duration setting is a config or an error naming
        /// the setting, never a panic.
        #[test]
        fn any_duration_setting_is_an_answer_never_a_panic(
            text in proptest::prop_oneof![
                "\\PC{0,24}",
                "-?[0-9]{0,20}(ms|s|m|h|d|w|y)?",
                "[0-9]{1,20}(ms|s|m|h|d|w|y)(,[0-9]{1,20}(ms|s|m|h|d|w|y)){0,12}",
            ],
            which in 0usize..7,
        ) {
            let mut args = ServeArgs::default();
            let setting = [
                &mut args.notify_timeout,
                &mut args.notify_retry_delays,
                &mut args.offline_check_interval,
                &mut args.raw_retention,
                &mut args.minute_retention,
                &mut args.hour_retention,
                &mut args.history_query_timeout,
            ];
            let name = ["notify_timeout", "notify_retry_delays", "offline_check_interval",
                "raw_retention", "minute_retention", "hour_retention", "history_query_timeout"][which];
            *setting.into_iter().nth(which).unwrap() = Some(text.clone());
            if let Err(e) = Config::resolve(args) {
                let msg = format!("{e:#}");
                proptest::prop_assert!(msg.contains(name), "{text:?}: {msg}");
            }
        }
    }
}
