//! The agent binaries the server carries, and the script that installs them:
//!
//! - `GET /download/agent/{os}-{arch}`: a static agent (`linux-x86_64`,
//!   `linux-aarch64`, ...) with its SHA-256 in `X-Checksum-Sha256`;
//! - `GET /download/agent/SHA256SUMS`: every one of them, in `sha256sum`'s
//!   format;
//! - `GET /download/agent/image/{os}-{arch}.tar`: the same agent as a
//!   container image for `docker load` ([`image`]);
//! - `GET /install.sh`: the installer ([`install`]).
//!
//! The binaries are the ones `make build` compiled into this server
//! (`server/build.rs`), or, with `--agent-binaries DIR`, the
//! `statusmonitor-agent-<os>-<arch>` files of that directory, hashed once at
//! start and read from disk on each download (a file changed afterwards no
//! longer matches its checksum, and the installer refuses it: restart the
//! server after replacing one). Like `/metrics`, these are outside the JSON
//! API and its OpenAPI description (docs/api.md lists them); they need no
//! log-in: an agent binary is no secret, and a machine being installed has
//! no session.

pub mod image;
pub mod install;
pub mod versions;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Path as PathParam};
use crate::state::AppState;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/agents.rs"));
}

/// The file name of the agent for `platform` (`linux-x86_64`), in the
/// agents directory, in `SHA256SUMS` and in `Content-Disposition`.
pub fn file_name(platform: &str) -> String {
    format!("statusmonitor-agent-{platform}")
}

/// Where one agent binary comes from.
enum Source {
    Embedded(&'static [u8]),
    File(PathBuf),
}

/// One agent binary and its SHA-256 (lower-case hex).
struct Binary {
    platform: String,
    source: Source,
    /// Hashed at first use for embedded binaries (so start-up does not pay
    /// for it), at start for files (so a file swapped later is caught).
    sha256: OnceLock<String>,
}

impl Binary {
    /// The binary's bytes: borrowed when embedded, read when a file (blocking).
    fn bytes(&self) -> anyhow::Result<std::borrow::Cow<'static, [u8]>> {
        Ok(match &self.source {
            Source::Embedded(bytes) => std::borrow::Cow::Borrowed(*bytes),
            Source::File(path) => std::borrow::Cow::Owned(
                std::fs::read(path)
                    .with_context(|| format!("reading agent binary {}", path.display()))?,
            ),
        })
    }

    fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| match &self.source {
            Source::Embedded(bytes) => hex::encode(Sha256::digest(bytes)),
            // Set in `from_dir`; never reached for files.
            Source::File(_) => String::new(),
        })
    }
}

/// The agent binaries this server serves.
pub struct AgentBinaries {
    binaries: Vec<Binary>,
    /// `--agent-binaries DIR`, for the 404 message.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for AgentBinaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBinaries")
            .field("platforms", &self.platforms())
            .field("dir", &self.dir)
            .finish()
    }
}

impl AgentBinaries {
    /// The directory's agents when `dir` is given, else the embedded ones.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<AgentBinaries> {
        match dir {
            Some(dir) => AgentBinaries::from_dir(dir),
            None => Ok(AgentBinaries::embedded()),
        }
    }

    /// What `make build` compiled in (possibly nothing).
    pub fn embedded() -> AgentBinaries {
        AgentBinaries {
            binaries: embedded::EMBEDDED
                .iter()
                .map(|(platform, bytes)| Binary {
                    platform: (*platform).to_string(),
                    source: Source::Embedded(bytes),
                    sha256: OnceLock::new(),
                })
                .collect(),
            dir: None,
        }
    }

    /// Every `statusmonitor-agent-<os>-<arch>` file of `dir`, hashed now.
    pub fn from_dir(dir: &Path) -> anyhow::Result<AgentBinaries> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("agent_binaries: cannot read {}", dir.display()))?;
        let mut binaries = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("agent_binaries: cannot read {}", dir.display()))?;
            let Some(platform) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("statusmonitor-agent-"))
                .filter(|p| valid_platform(p))
                .map(str::to_string)
            else {
                continue;
            };
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let mut file = std::fs::File::open(&path)
                .with_context(|| format!("agent_binaries: cannot read {}", path.display()))?;
            let mut hasher = Sha256::new();
            std::io::copy(&mut file, &mut hasher)
                .with_context(|| format!("agent_binaries: cannot read {}", path.display()))?;
            binaries.push(Binary {
                platform,
                source: Source::File(path),
                sha256: OnceLock::from(hex::encode(hasher.finalize())),
            });
        }
        binaries.sort_by(|a, b| a.platform.cmp(&b.platform));
        Ok(AgentBinaries {
            binaries,
            dir: Some(dir.to_path_buf()),
        })
    }

    /// The platforms served, sorted (`linux-aarch64`, `linux-x86_64`).
    pub fn platforms(&self) -> Vec<&str> {
        self.binaries.iter().map(|b| b.platform.as_str()).collect()
    }

    /// The SHA-256 of `platform`'s binary, if there is one.
    pub fn sha256(&self, platform: &str) -> Option<&str> {
        self.find(platform).map(Binary::sha256)
    }

    /// `SHA256SUMS`: `<hex>  statusmonitor-agent-<platform>` per line.
    pub fn sums(&self) -> String {
        self.binaries
            .iter()
            .map(|b| format!("{}  {}\n", b.sha256(), file_name(&b.platform)))
            .collect()
    }

    fn find(&self, platform: &str) -> Option<&Binary> {
        self.binaries.iter().find(|b| b.platform == platform)
    }

    /// The 404 for a server without agents: how to give it some.
    fn none_message(&self) -> String {
        match &self.dir {
            Some(dir) => format!(
                "this server serves agent binaries from {} and it has none: put \
                 statusmonitor-agent-linux-<arch> files there and restart the server",
                dir.display()
            ),
            None => "this server was built without agent binaries: build it with `make build` \
                     (which compiles the static Linux agents into it), or start it with \
                     --agent-binaries DIR"
                .to_string(),
        }
    }
}

/// `linux-x86_64`: an OS and an architecture of lower-case letters, digits
/// and `_`, joined by one `-`.
pub fn valid_platform(p: &str) -> bool {
    p.len() <= 32
        && p.split_once('-').is_some_and(|(os, arch)| {
            let part = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            };
            part(os) && part(arch)
        })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/download/agent/SHA256SUMS", get(sums))
        .route("/download/agent/image/{file}", get(container_image))
        .route("/download/agent/{platform}", get(binary))
        .route("/install.sh", get(install::script))
}

async fn sums(State(state): State<AppState>) -> Result<Response, ApiError> {
    let agents = state.agent_binaries.clone();
    if agents.binaries.is_empty() {
        return Err(ApiError::NotFound(agents.none_message()));
    }
    // Hashing the embedded binaries the first time takes a few milliseconds.
    let sums = tokio::task::spawn_blocking(move || agents.sums())
        .await
        .map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        sums,
    )
        .into_response())
}

async fn binary(
    State(state): State<AppState>,
    PathParam(platform): PathParam<String>,
) -> Result<Response, ApiError> {
    let agents = state.agent_binaries.clone();
    if agents.binaries.is_empty() {
        return Err(ApiError::NotFound(agents.none_message()));
    }
    if agents.find(&platform).is_none() {
        let shown: String = platform.chars().take(40).collect();
        return Err(ApiError::NotFound(format!(
            "this server has no agent for `{}`; it has: {}",
            shown.escape_default(),
            agents.platforms().join(", ")
        )));
    }
    // Reading a file (and the first hash of an embedded binary) blocks.
    let (body, sha256, name) = tokio::task::spawn_blocking(move || {
        let b = agents.find(&platform).expect("found above");
        Ok::<_, anyhow::Error>((b.bytes()?, b.sha256().to_string(), file_name(&b.platform)))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::Internal)?;
    let mut response = attachment(body, "application/octet-stream", &name);
    if let Ok(v) = HeaderValue::from_str(&sha256) {
        response.headers_mut().insert(CHECKSUM_HEADER, v);
    }
    Ok(response)
}

/// `body` as a download named `name`, never cached (a rebuilt server
/// serves other bytes under the same name).
fn attachment(
    body: impl Into<axum::body::Body>,
    content_type: &'static str,
    name: &str,
) -> Response {
    let mut response = body.into().into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `linux-x86_64.tar`: the agent of that platform as a container image.
async fn container_image(
    State(state): State<AppState>,
    PathParam(file): PathParam<String>,
) -> Result<Response, ApiError> {
    let agents = state.agent_binaries.clone();
    if agents.binaries.is_empty() {
        return Err(ApiError::NotFound(agents.none_message()));
    }
    // `uname -m` says `armv7l` where the agent's platform is `armv7`.
    let platform = file
        .strip_suffix(".tar")
        .map(|p| {
            p.strip_suffix('l')
                .filter(|p| p.ends_with("armv7"))
                .unwrap_or(p)
        })
        .unwrap_or_default()
        .to_string();
    let found = agents
        .find(&platform)
        .and_then(|b| b.platform.split_once('-'))
        .filter(|(_, arch)| image::oci_arch(arch).is_some());
    if found.is_none() {
        let shown: String = file.chars().take(40).collect();
        return Err(ApiError::NotFound(format!(
            "this server has no agent image `{}`; it has: {}",
            shown.escape_default(),
            agents
                .platforms()
                .iter()
                .filter(|p| p
                    .split_once('-')
                    .is_some_and(|(_, a)| image::oci_arch(a).is_some()))
                .map(|p| format!("{p}.tar"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Reading the binary and packing a few MB: blocking work.
    let (body, name) = tokio::task::spawn_blocking(move || {
        let b = agents.find(&platform).expect("found above");
        let (os, arch) = b.platform.split_once('-').expect("checked above");
        let tag = image::tag(crate::config::VERSION);
        let archive = image::archive(&b.bytes()?, os, arch, &tag)?;
        Ok::<_, anyhow::Error>((archive, format!("{}-{}.tar", image::NAME, b.platform)))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::Internal)?;
    Ok(attachment(body, "application/x-tar", &name))
}

/// The header that carries a download's SHA-256 (lower-case hex).
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_os_dash_arch_in_lower_case() {
        for ok in ["linux-x86_64", "linux-aarch64", "linux-armv7"] {
            assert!(valid_platform(ok), "{ok}");
        }
        for bad in [
            "",
            "linux",
            "linux-",
            "-x86_64",
            "Linux-x86_64",
            "linux-x86 64",
            "linux-../x",
            "linux-x86_64-extra",
            "SHA256SUMS",
        ] {
            assert!(!valid_platform(bad), "{bad}");
        }
    }

    #[test]
    fn a_directory_is_hashed_and_listed_in_sha256sum_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("statusmonitor-agent-linux-x86_64"), b"abc").unwrap();
        std::fs::write(dir.path().join("README"), b"ignored").unwrap();
        let agents = AgentBinaries::from_dir(dir.path()).unwrap();
        assert_eq!(agents.platforms(), ["linux-x86_64"]);
        assert_eq!(
            agents.sums(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  \
             statusmonitor-agent-linux-x86_64\n"
        );
    }
}
