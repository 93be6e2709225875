//! Stages the client bundle (`pkg/`, written by `make bundle`) and the static
//! files (`static/`) into `$OUT_DIR/embed`, with gzip and brotli copies of
//! everything compressible, and computes the content hash that versions their
//! URLs. Fails the build when the bundle is missing: a blank UI must never ship.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Files the hydration script asks for (`output_name = "ui"`, wasm-bindgen `--target web`).
const REQUIRED: [&str; 2] = ["ui.js", "ui_bg.wasm"];

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embed");
    let pkg = manifest.join("pkg");
    let stat = manifest.join("static");
    println!("cargo:rerun-if-changed={}", pkg.display());
    println!("cargo:rerun-if-changed={}", stat.display());

    for name in REQUIRED {
        let path = pkg.join(name);
        if !path.is_file() {
            panic!(
                "\n\nthe client bundle is missing: {} does not exist.\n\
                 Build it first with `make bundle` (`make run` and `make test` do this).\n\
                 Refusing to build a server with a blank UI.\n",
                path.display()
            );
        }
    }

    if out.exists() {
        fs::remove_dir_all(&out).expect("clear the staging folder");
    }
    let mut hasher = Sha256::new();
    for (dir, prefix) in [(&pkg, "pkg"), (&stat, "static")] {
        let mut files = Vec::new();
        walk(dir, &mut files);
        files.sort();
        for file in files {
            let rel = file.strip_prefix(dir).expect("walked below dir");
            let rel_str = rel.to_string_lossy().replace('\\', "/");
            println!("cargo:rerun-if-changed={}", file.display());
            let bytes = fs::read(&file).expect("read a bundle file");
            hasher.update(prefix.as_bytes());
            hasher.update(rel_str.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
            let dest = out.join(prefix).join(rel);
            fs::create_dir_all(dest.parent().expect("has a parent")).expect("create staging dir");
            fs::write(&dest, &bytes).expect("stage a bundle file");
            if compressible(&rel_str) && bytes.len() > 512 {
                fs::write(with_ext(&dest, "gz"), gzip(&bytes)).expect("write .gz");
                fs::write(with_ext(&dest, "br"), brotli(&bytes)).expect("write .br");
            }
        }
    }
    let hash = hex::encode(&hasher.finalize()[..8]);
    println!("cargo:rustc-env=STATUSMONITOR_BUNDLE_HASH={hash}");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("read a directory entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.file_name().is_some_and(|n| n != ".gitkeep") {
            files.push(path);
        }
    }
}

fn compressible(name: &str) -> bool {
    [
        ".js", ".wasm", ".css", ".svg", ".json", ".html", ".txt", ".map",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

fn with_ext(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("brotli into memory");
    out
}
