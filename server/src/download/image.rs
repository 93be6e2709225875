//! `GET /download/agent/image/{os}-{arch}.tar`: the agent as a container
//! image, for `docker load` / `podman load`, made on the fly from the agent
//! binary the server carries, so a machine that prefers containers needs no
//! registry and no internet either:
//!
//! ```sh
//! curl -fsSL http://server:8420/download/agent/image/linux-$(uname -m).tar | docker load
//! ```
//!
//! The archive is the `docker save` layout both engines load: a
//! `manifest.json` naming the image (`statusmonitor-agent:<version>`), its
//! configuration (entrypoint `/statusmonitor-agent`, the agent's own
//! defaults) and one layer holding the static binary and the directory the
//! agent keeps its configuration and spool in. Nothing else is in the image:
//! no shell, no libraries (the agents are static, musl).

use sha2::{Digest, Sha256};

/// The image's name, as `docker load` prints it (`statusmonitor-agent:0.1.0`).
pub const NAME: &str = "statusmonitor-agent";

/// Where the agent reads its configuration (`STATUSMONITOR_AGENT_CONFIG`)
/// and keeps its spool inside the image: a volume there keeps the spool
/// across a re-created container.
const STATE_DIR: &str = "etc/statusmonitor-agent/";

/// The OCI architecture name of an agent platform's architecture
/// (`x86_64` → `amd64`), with its variant, or `None` for one no engine knows.
pub fn oci_arch(arch: &str) -> Option<(&'static str, Option<&'static str>)> {
    match arch {
        "x86_64" => Some(("amd64", None)),
        "aarch64" => Some(("arm64", Some("v8"))),
        "armv7" => Some(("arm", Some("v7"))),
        _ => None,
    }
}

/// The image tag: the agent's version without the git revision
/// (`0.1.0 (abc1234)` → `0.1.0`).
pub fn tag(version: &str) -> String {
    version
        .split_whitespace()
        .next()
        .unwrap_or("latest")
        .to_string()
}

/// The archive for `binary`, built for `os`/`arch`, tagged `tag`.
pub fn archive(binary: &[u8], os: &str, arch: &str, tag: &str) -> anyhow::Result<Vec<u8>> {
    let (oci_arch, variant) =
        oci_arch(arch).ok_or_else(|| anyhow::anyhow!("no container architecture for `{arch}`"))?;
    let layer = layer(binary)?;
    let layer_id = hex::encode(Sha256::digest(&layer));
    let mut config = serde_json::json!({
        "architecture": oci_arch,
        "os": os,
        "config": {
            "Entrypoint": ["/statusmonitor-agent"],
            "Env": [format!("STATUSMONITOR_AGENT_CONFIG=/{STATE_DIR}agent.toml")],
            "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": NAME,
                "org.opencontainers.image.version": tag,
                "org.opencontainers.image.description":
                    "StatusMonitor's agent, served by the StatusMonitor server it reports to",
            },
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_id}")] },
        "history": [{ "created_by": "statusmonitor: the agent binary the server carries" }],
    });
    if let Some(v) = variant {
        config["variant"] = v.into();
    }
    let config = serde_json::to_vec(&config)?;
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    let layer_name = format!("{layer_id}/layer.tar");
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        // The version, and `latest`: the dashboard's one-liner runs `latest`,
        // the image the server it was copied from serves.
        "RepoTags": [format!("{NAME}:{tag}"), format!("{NAME}:latest")],
        "Layers": [layer_name],
    }]))?;
    let mut out = tar::Builder::new(Vec::with_capacity(layer.len() + 16 * 1024));
    append_dir(&mut out, &format!("{layer_id}/"))?;
    append_file(&mut out, &layer_name, &layer, 0o644)?;
    append_file(&mut out, &config_name, &config, 0o644)?;
    append_file(&mut out, "manifest.json", &manifest, 0o644)?;
    Ok(out.into_inner()?)
}

/// The one layer: `/statusmonitor-agent` and the agent's state directory.
fn layer(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut t = tar::Builder::new(Vec::with_capacity(binary.len() + 4096));
    append_dir(&mut t, "etc/")?;
    append_dir(&mut t, STATE_DIR)?;
    append_file(&mut t, "statusmonitor-agent", binary, 0o755)?;
    Ok(t.into_inner()?)
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    // A fixed time: the same binary always makes the same archive.
    h.set_mtime(0);
    h
}

fn append_dir(t: &mut tar::Builder<Vec<u8>>, path: &str) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    t.append_data(&mut h, path, std::io::empty())
}

fn append_file(
    t: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, mode);
    t.append_data(&mut h, path, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mode = e.header().mode().unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, mode, data)
            })
            .collect()
    }

    #[test]
    fn the_archive_names_its_config_and_layer_by_their_digests() {
        let bytes = archive(b"\x7fELF agent", "linux", "aarch64", "1.2.3").unwrap();
        let files = entries(&bytes);
        let get = |name: &str| {
            files
                .iter()
                .find(|(p, _, _)| p == name)
                .unwrap_or_else(|| panic!("{name} in {files:?}"))
                .2
                .clone()
        };
        let manifest: serde_json::Value = serde_json::from_slice(&get("manifest.json")).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], "statusmonitor-agent:1.2.3");
        assert_eq!(manifest[0]["RepoTags"][1], "statusmonitor-agent:latest");
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config_bytes = get(config_name);
        assert_eq!(
            config_name,
            format!("{}.json", hex::encode(Sha256::digest(&config_bytes)))
        );
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["variant"], "v8");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Entrypoint"][0], "/statusmonitor-agent");
        assert_eq!(
            config["config"]["Env"][0],
            "STATUSMONITOR_AGENT_CONFIG=/etc/statusmonitor-agent/agent.toml"
        );
        let layer_name = manifest[0]["Layers"][0].as_str().unwrap();
        let layer = get(layer_name);
        let digest = hex::encode(Sha256::digest(&layer));
        assert_eq!(layer_name, format!("{digest}/layer.tar"));
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{digest}").as_str()
        );
        let inside = entries(&layer);
        let agent = inside
            .iter()
            .find(|(p, _, _)| p == "statusmonitor-agent")
            .unwrap();
        assert_eq!(
            (agent.1, agent.2.as_slice()),
            (0o755, &b"\x7fELF agent"[..])
        );
        assert!(inside.iter().any(|(p, _, _)| p == STATE_DIR));
        // Made the same way twice, byte for byte.
        assert_eq!(
            bytes,
            archive(b"\x7fELF agent", "linux", "aarch64", "1.2.3").unwrap()
        );
    }

    #[test]
    fn only_architectures_an_engine_knows_and_the_version_without_revision() {
        assert_eq!(oci_arch("x86_64"), Some(("amd64", None)));
        assert_eq!(oci_arch("riscv64"), None);
        assert!(archive(b"x", "linux", "riscv64", "1").is_err());
        assert_eq!(tag("0.1.0 (abc1234)"), "0.1.0");
    }
}
