//! The `FORMAT` file: which on-disk format a tsdb directory holds.

use std::path::Path;

use super::{Error, io_err};

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the version file in the tsdb directory.
pub const FORMAT_FILE: &str = "FORMAT";
const FORMAT_MAGIC: &str = "statusmonitor-tsdb";

/// Check (or, in an empty directory, write) the format file.
pub(super) fn check_format(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(FORMAT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found = text.trim().to_owned();
            let version = found
                .strip_prefix(FORMAT_MAGIC)
                .map(str::trim)
                .and_then(|v| v.parse::<u32>().ok());
            if version == Some(FORMAT_VERSION) {
                Ok(())
            } else {
                Err(Error::UnsupportedFormat {
                    path,
                    found: found.chars().take(64).collect(),
                    supported: FORMAT_VERSION,
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
            if entries.next().is_some() {
                return Err(Error::UnsupportedFormat {
                    path,
                    found: "no FORMAT file in a non-empty directory".into(),
                    supported: FORMAT_VERSION,
                });
            }
            let tmp = dir.join("FORMAT.tmp");
            std::fs::write(&tmp, format!("{FORMAT_MAGIC} {FORMAT_VERSION}\n"))
                .map_err(io_err(&tmp))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}
