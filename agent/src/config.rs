//! Command line, environment and TOML file, merged into one [`Config`].
//!
//! Precedence: flags over `STATUSMONITOR_AGENT_*` environment variables (both
//! handled by clap) over the TOML file (`--config`, default
//! `~/.config/statusmonitor-agent/agent.toml`) over built-in defaults. Every
//! value is checked when it is parsed, wherever it comes from.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::collect::{ContainerConfig, Filter, ProcessConfig, ServiceConfig};
use crate::error::AgentError;

/// The shortest collection interval the agent accepts.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default collection interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default HTTP timeout for one request, connect included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the default spool can cover at the configured interval.
pub const DEFAULT_SPOOL_SPAN: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Parser)]
#[command(
    name = "statusmonitor-agent",
    version,
    about = "Collects host metrics and pushes them to a StatusMonitor server, spooling while it is away.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run`, the default command.
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect every interval and send to the server (the default).
    Run(AgentArgs),
    /// Print one report (with host facts) as an IngestBatch JSON and exit.
    Once(AgentArgs),
    /// Ask for the server URL and token, test them and write the config file.
    Setup(AgentArgs),
    /// Write a hardened systemd unit (Linux) that runs this agent.
    InstallService(InstallArgs),
    /// Load generator: play one synthetic agent per token against a server.
    Simulate(crate::simulate::SimulateArgs),
    /// Replace this binary with the server's build when the server has
    /// another one (SHA-256 checked); exit 0 when it is current already.
    Update(UpdateArgs),
}

/// Options shared by `run`, `once`, `setup` and `install-service`. The same
/// struct reads the TOML file (keys are the field names; an unknown key or a
/// bad value is an error naming it, so a typo does not silently fall back to
/// a default), and `setup` writes it back: a new setting is one field here
/// and one line in [`Config::resolve`].
#[derive(Debug, Args, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentArgs {
    /// TOML config file [default: ~/.config/statusmonitor-agent/agent.toml].
    #[arg(long, env = "STATUSMONITOR_AGENT_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Server base URL, e.g. `https://monitor.example:8420`.
    #[arg(long, env = "STATUSMONITOR_AGENT_SERVER", value_parser = parse_server)]
    #[serde(
        deserialize_with = "text::server",
        skip_serializing_if = "Option::is_none"
    )]
    pub server: Option<String>,
    /// Agent token shown once by the dashboard (sent as `X-Agent-Token`).
    #[arg(long, env = "STATUSMONITOR_AGENT_TOKEN", hide_env_values = true, value_parser = parse_token)]
    #[serde(
        deserialize_with = "text::token",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<Token>,
    /// Collection interval (`5s`, `1500ms`, `1m`; at least 1 s) [default: 5s].
    #[arg(long, env = "STATUSMONITOR_AGENT_INTERVAL", value_parser = parse_interval)]
    #[serde(
        deserialize_with = "text::interval",
        serialize_with = "text::duration_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// Directory of the on-disk spool [default: `spool` beside the config file].
    #[arg(long, env = "STATUSMONITOR_AGENT_SPOOL_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// Most reports the spool keeps; the oldest go first [default: 24 h worth].
    #[arg(long, env = "STATUSMONITOR_AGENT_SPOOL_MAX", value_parser = parse_spool_max)]
    #[serde(
        deserialize_with = "text::spool_max",
        skip_serializing_if = "Option::is_none"
    )]
    pub spool_max: Option<usize>,
    /// Only these mount points (comma list; `*` at the end matches a prefix).
    #[arg(long, env = "STATUSMONITOR_AGENT_MOUNTS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<String>>,
    /// Never these mount points (comma list; `*` at the end matches a prefix).
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_EXCLUDE_MOUNTS",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_mounts: Option<Vec<String>>,
    /// Only these network interfaces (comma list; `*` at the end matches a prefix).
    #[arg(long, env = "STATUSMONITOR_AGENT_IFACES", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifaces: Option<Vec<String>>,
    /// Never these network interfaces (comma list; `*` at the end matches a prefix).
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_EXCLUDE_IFACES",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_ifaces: Option<Vec<String>>,
    /// Also report loopback interfaces (skipped by default).
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_INCLUDE_LOOPBACK",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_loopback: Option<bool>,
    /// Timeout of one HTTP request, connect included [default: 15s].
    #[arg(long, env = "STATUSMONITOR_AGENT_TIMEOUT", value_parser = parse_duration)]
    #[serde(
        deserialize_with = "text::duration",
        serialize_with = "text::duration_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// PEM file with the certificate authority (or the self-signed
    /// certificate) of an `https://` server, trusted instead of the public
    /// web roots [default: the public roots].
    #[arg(long, env = "STATUSMONITOR_AGENT_CA_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// The Docker Engine API socket to read containers from (Docker, or
    /// Podman's compatible socket) [default: the first of
    /// /var/run/docker.sock, /run/podman/podman.sock,
    /// $XDG_RUNTIME_DIR/podman/podman.sock that exists].
    #[arg(long, env = "STATUSMONITOR_AGENT_DOCKER_SOCKET")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_socket: Option<PathBuf>,
    /// Do not report containers.
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_NO_CONTAINERS",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_containers: Option<bool>,
    /// Do not report the top processes.
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_NO_PROCESSES",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_processes: Option<bool>,
    /// Send the top processes' command lines (truncated; they can hold
    /// secrets, so they are off by default).
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_PROCESS_CMDLINE",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_cmdline: Option<bool>,
    /// systemd units to report whatever their state (comma list; `nginx`
    /// means `nginx.service`; `*`: every service). Failed units always are.
    #[arg(long, env = "STATUSMONITOR_AGENT_SERVICES", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// Do not report systemd units.
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_NO_SERVICES",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_services: Option<bool>,
    /// Do not run the uptime checks the server assigns to this agent.
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_NO_CHECKS",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_checks: Option<bool>,
    /// Replace this binary with the server's build when it has another one
    /// (SHA-256 checked), then restart [default: false].
    #[arg(
        long,
        env = "STATUSMONITOR_AGENT_AUTO_UPDATE",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_update: Option<bool>,
    /// How often `auto_update` asks the server for another build (at
    /// least 1s) [default: 6h].
    #[arg(long, env = "STATUSMONITOR_AGENT_UPDATE_EVERY", value_parser = parse_update_every)]
    #[serde(
        deserialize_with = "text::update_every",
        serialize_with = "text::duration_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub update_every: Option<Duration>,
}

impl AgentArgs {
    /// Reads the TOML file into the settings; a missing file is no settings,
    /// a broken one an error naming the file and the key.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(AgentError::Config(format!("{}: {e}", path.display()))),
        };
        toml::from_str(&text).map_err(|e| {
            // toml's message spans several lines with a source excerpt; keep
            // the first, and name the key whose value is wrong.
            let msg = e.message().trim().to_string();
            match e.span().and_then(|span| key_at(&text, span.start)) {
                Some(key) if !msg.contains(&format!("`{key}`")) => {
                    AgentError::Config(format!("{} `{key}`: {msg}", path.display()))
                }
                _ => AgentError::Config(format!("{}: {msg}", path.display())),
            }
        })
    }
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

/// The TOML side of the settings that clap checks with a `value_parser`:
/// the same checks, so a value is refused the same way wherever it is set.
mod text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::Token;

    fn checked<'de, D: Deserializer<'de>, T>(
        d: D,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map(Some).map_err(D::Error::custom)
    }

    pub fn server<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        checked(d, super::parse_server)
    }

    pub fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Token>, D::Error> {
        checked(d, super::parse_token)
    }

    pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        checked(d, super::parse_interval)
    }

    pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        checked(d, super::parse_duration)
    }

    pub fn update_every<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        checked(d, super::parse_update_every)
    }

    /// A whole number in the file (`spool_max = 1000`).
    pub fn spool_max<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        let n = u64::deserialize(d)?;
        super::parse_spool_max(&n.to_string())
            .map(Some)
            .map_err(D::Error::custom)
    }

    /// `1500ms`, or `5s` when whole seconds: what [`super::parse_duration`] reads.
    pub fn duration_out<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) if d.subsec_millis() == 0 => s.serialize_str(&format!("{}s", d.as_secs())),
            Some(d) => s.serialize_str(&format!("{}ms", d.as_millis())),
            None => s.serialize_none(),
        }
    }
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Do nothing unless `auto_update` is on: how the systemd unit runs it,
    /// with full privileges, before each start (`ExecStartPre=-+…`).
    #[arg(long)]
    pub if_auto_update: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the unit and environment file instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the unit goes.
    #[arg(
        long,
        default_value = "/etc/systemd/system/statusmonitor-agent.service"
    )]
    pub unit_path: PathBuf,
    /// The agent binary the unit runs [default: this executable].
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

/// The agent token. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// The secret itself, for the `X-Agent-Token` header and the config file only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything the agent needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file that was read (or would be written by `setup`).
    pub config_path: PathBuf,
    /// Server base URL without a trailing slash.
    pub server: Option<String>,
    pub token: Option<Token>,
    pub interval: Duration,
    pub spool_dir: PathBuf,
    pub spool_max: usize,
    pub filter: Filter,
    pub timeout: Duration,
    /// The certificates `--ca-cert` names, read and checked at start.
    pub ca_cert: Option<CaCert>,
    pub containers: ContainerConfig,
    pub processes: ProcessConfig,
    pub services: ServiceConfig,
    /// Do not run the checks the server assigns (see [`crate::checks`]).
    pub no_checks: bool,
    /// Follow the server's build (see [`crate::update`]).
    pub auto_update: bool,
    /// How often `auto_update` asks the server.
    pub update_every: Duration,
}

impl Config {
    /// Merges flags/env (`args`) over the TOML file over defaults. Every
    /// value was checked when it was parsed, wherever it came from.
    pub fn resolve(args: &AgentArgs) -> Result<Self, AgentError> {
        let config_path = args.config.clone().unwrap_or_else(default_config_path);
        let file = AgentArgs::load(&config_path)?;
        Self::merge(args.clone(), file, config_path)
    }

    fn merge(args: AgentArgs, file: AgentArgs, config_path: PathBuf) -> Result<Self, AgentError> {
        let interval = args.interval.or(file.interval).unwrap_or(DEFAULT_INTERVAL);
        let ca_cert = match (args.ca_cert, file.ca_cert) {
            (Some(p), _) => Some(CaCert::load(&p)?),
            (None, Some(p)) => Some(CaCert::load(&p).map_err(|e| {
                AgentError::Config(format!("{} `ca_cert`: {e}", config_path.display()))
            })?),
            (None, None) => None,
        };
        let flag = |a: Option<bool>, f: Option<bool>| a.or(f).unwrap_or(false);
        let containers = ContainerConfig {
            disabled: flag(args.no_containers, file.no_containers),
            socket: args.docker_socket.or(file.docker_socket),
        };
        let processes = ProcessConfig {
            disabled: flag(args.no_processes, file.no_processes),
            cmdline: flag(args.process_cmdline, file.process_cmdline),
        };
        let services = ServiceConfig {
            disabled: flag(args.no_services, file.no_services),
            watch: args.services.or(file.services).unwrap_or_default(),
        };
        let auto_update = flag(args.auto_update, file.auto_update);
        let no_checks = flag(args.no_checks, file.no_checks);
        Ok(Self {
            server: args.server.or(file.server),
            token: args.token.or(file.token),
            interval,
            spool_dir: args
                .spool_dir
                .or(file.spool_dir)
                .unwrap_or_else(|| default_spool_dir(&config_path)),
            spool_max: args
                .spool_max
                .or(file.spool_max)
                .unwrap_or_else(|| default_spool_max(interval)),
            filter: Filter {
                mounts: args.mounts.or(file.mounts).unwrap_or_default(),
                exclude_mounts: args
                    .exclude_mounts
                    .or(file.exclude_mounts)
                    .unwrap_or_default(),
                ifaces: args.ifaces.or(file.ifaces).unwrap_or_default(),
                exclude_ifaces: args
                    .exclude_ifaces
                    .or(file.exclude_ifaces)
                    .unwrap_or_default(),
                include_loopback: args
                    .include_loopback
                    .or(file.include_loopback)
                    .unwrap_or(false),
            },
            timeout: args.timeout.or(file.timeout).unwrap_or(DEFAULT_TIMEOUT),
            ca_cert,
            containers,
            processes,
            services,
            no_checks,
            auto_update,
            update_every: args
                .update_every
                .or(file.update_every)
                .unwrap_or(crate::update::CHECK_EVERY),
            config_path,
        })
    }

    /// Server and token, which `run` cannot do without.
    pub fn endpoint(&self) -> Result<(&str, &Token), AgentError> {
        match (&self.server, &self.token) {
            (Some(s), Some(t)) => Ok((s, t)),
            _ => Err(AgentError::Config(format!(
                "server and token are required: pass --server and --token, set \
                 STATUSMONITOR_AGENT_SERVER and STATUSMONITOR_AGENT_TOKEN, or run \
                 `statusmonitor-agent setup` to write {}",
                self.config_path.display()
            ))),
        }
    }
}

/// The certificates of a `--ca-cert` PEM file: the only roots the agent
/// trusts for an `https://` server when given (a private CA, or the server's
/// self-signed certificate itself).
#[derive(Clone)]
pub struct CaCert {
    /// The file, made absolute (`setup` and `install-service` write it out).
    pub path: PathBuf,
    pub certs: Vec<ureq::tls::Certificate<'static>>,
}

impl CaCert {
    /// Reads `path`; a file without a PEM certificate is an error.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        let fail =
            |e: String| AgentError::Config(format!("CA certificate {}: {e}", path.display()));
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| fail(e.to_string()))? {
                certs.push(c);
            }
        }
        if certs.is_empty() {
            return Err(fail(
                "no certificate in it (expected one or more -----BEGIN CERTIFICATE----- blocks)"
                    .into(),
            ));
        }
        Ok(Self {
            // Absolute, for the files `setup` and `install-service` write.
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            certs,
        })
    }
}

impl fmt::Debug for CaCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CaCert({}, {} certificates)",
            self.path.display(),
            self.certs.len()
        )
    }
}

/// 24 hours of reports at `interval`.
pub fn default_spool_max(interval: Duration) -> usize {
    let per = interval.as_millis().max(1);
    (DEFAULT_SPOOL_SPAN.as_millis() / per).max(1) as usize
}

/// `$XDG_CONFIG_HOME` or `~/.config` on Unix, `%APPDATA%` on Windows,
/// `~/Library/Application Support` on macOS; `./agent.toml` as a last resort.
pub fn default_config_path() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(target_os = "windows") {
        env("APPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Application Support"))
    } else {
        env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| h.join(".config")))
    };
    match base {
        Some(b) => b.join("statusmonitor-agent").join("agent.toml"),
        None => PathBuf::from("agent.toml"),
    }
}

fn default_spool_dir(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join("spool")
}

/// An `http://` or `https://` URL with a host; the trailing slash is dropped.
pub fn parse_server(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("`{s}` must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(format!("`{s}` has no host"));
    }
    Ok(s.to_string())
}

/// A non-empty token of visible ASCII (it goes into an HTTP header).
pub fn parse_token(s: &str) -> Result<Token, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the token is empty".into());
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token must be printable ASCII without spaces".into());
    }
    Ok(Token(s.to_string()))
}

/// `1500ms`, `5s`, `2m`, `1h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 5s, 1500ms or 1m"))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("`{s}`: unknown unit, use ms, s, m or h")),
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// A duration of at least [`MIN_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL {
        return Err(format!("`{s}` is shorter than the minimum interval of 1s"));
    }
    if d > Duration::from_secs(3600) {
        return Err(format!("`{s}` is longer than the maximum interval of 1h"));
    }
    Ok(d)
}

/// How often `auto_update` asks: at least 1 s.
pub fn parse_update_every(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("`{s}` is shorter than 1s"));
    }
    Ok(d)
}

/// At least one report.
pub fn parse_spool_max(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` must be a whole number of reports, at least 1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_interval_has_a_minimum() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_interval("500ms").is_err());
        assert_eq!(parse_interval("1s"), Ok(MIN_INTERVAL));
    }

    #[test]
    fn server_url_is_checked_and_trailing_slash_dropped() {
        assert_eq!(
            parse_server("http://h:8420/").as_deref(),
            Ok("http://h:8420")
        );
        assert!(parse_server("h:8420").is_err());
        assert!(parse_server("https://").is_err());
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let file: AgentArgs = toml::from_str(
            r#"server = "http://file:1"
               token = "filetoken"
               interval = "10s"
               exclude_mounts = ["/boot*"]"#,
        )
        .unwrap();
        let args = AgentArgs {
            server: Some("http://flag:2".into()),
            ..Default::default()
        };
        let c = Config::merge(args, file, PathBuf::from("/etc/sm/agent.toml")).unwrap();
        assert_eq!(c.server.as_deref(), Some("http://flag:2"));
        assert_eq!(c.token.as_ref().map(Token::expose), Some("filetoken"));
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.spool_max, 8640);
        assert_eq!(c.spool_dir, PathBuf::from("/etc/sm/spool"));
        assert_eq!(c.filter.exclude_mounts, vec!["/boot*".to_string()]);
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    /// A bad value in the file is one line naming the file and the key,
    /// checked as the flag's value would be.
    #[test]
    fn bad_file_values_are_rejected_naming_the_file_and_the_key() {
        for (text, key) in [
            ("interval = \"100ms\"", "interval"),
            ("timeout = \"soon\"", "timeout"),
            ("server = \"monitor.lan\"", "server"),
            ("token = \"two words\"", "token"),
            ("spool_max = 0", "spool_max"),
            ("include_loopback = \"maybe\"", "include_loopback"),
            ("intervall = \"5s\"", "intervall"),
        ] {
            let f = file(text);
            let e = AgentArgs::load(f.path()).unwrap_err().to_string();
            assert!(e.contains(&f.path().display().to_string()), "{text}: {e}");
            assert!(e.contains(key), "{text}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let bad = file("interval = \"100ms\"");
        let args = AgentArgs {
            config: Some(bad.path().to_path_buf()),
            ..Default::default()
        };
        assert!(Config::resolve(&args).is_err());
    }

    /// Every key the file takes, read into the same struct as the flags and
    /// written back by `setup` unchanged.
    #[test]
    fn every_key_of_the_file_is_read_and_written_back() {
        let text = r#"server = "https://monitor.lan:8420"
token = "t0ken"
interval = "1500ms"
spool_dir = "/var/spool/sm"
spool_max = 1000
mounts = ["/", "/data*"]
exclude_mounts = ["/boot*"]
ifaces = ["eth*"]
exclude_ifaces = ["docker*"]
include_loopback = true
timeout = "30s"
"#;
        let args: AgentArgs = toml::from_str(text).unwrap();
        let c = Config::merge(AgentArgs::default(), args.clone(), PathBuf::from("a.toml")).unwrap();
        assert_eq!(c.server.as_deref(), Some("https://monitor.lan:8420"));
        assert_eq!(c.token.as_ref().map(Token::expose), Some("t0ken"));
        assert_eq!(c.interval, Duration::from_millis(1500));
        assert_eq!(c.spool_dir, PathBuf::from("/var/spool/sm"));
        assert_eq!(c.spool_max, 1000);
        assert_eq!(c.filter.mounts, ["/", "/data*"]);
        assert_eq!(c.filter.exclude_mounts, ["/boot*"]);
        assert_eq!(c.filter.ifaces, ["eth*"]);
        assert_eq!(c.filter.exclude_ifaces, ["docker*"]);
        assert!(c.filter.include_loopback);
        assert_eq!(c.timeout, Duration::from_secs(30));
        let written = toml::to_string(&args).unwrap();
        let again: AgentArgs = toml::from_str(&written).unwrap();
        assert_eq!(toml::to_string(&again).unwrap(), written);
        assert!(written.contains("interval = \"1500ms\""), "{written}");
        assert!(written.contains("timeout = \"30s\""), "{written}");
        // Unset settings are left out, not written as defaults.
        assert_eq!(toml::to_string(&AgentArgs::default()).unwrap(), "");
    }

    #[test]
    fn token_is_never_printed() {
        let t = parse_token("s3cret").unwrap();
        assert!(!format!("{t:?} {t}").contains("s3cret"));
    }

    proptest::proptest! {
        /// Any text given to a setting is a value or an error, never a panic.
        #[test]
        fn any_setting_text_is_an_answer_never_a_panic(
            text in proptest::prop_oneof![
                "\\PC{0,30}",
                "[0-9]{0,25}(ms|s|m|min|h| s|x)?",
            ],
        ) {
            let _ = parse_duration(&text);
            let _ = parse_interval(&text);
            let _ = parse_server(&text);
            let _ = parse_token(&text);
            let _ = parse_spool_max(&text);
        }
    }
}
