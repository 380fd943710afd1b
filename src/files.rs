//! File helpers shared by checkpoints and downloaded data.

/// A file operation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot be {action}: {source}")]
pub struct FileError {
    pub path: String,
    pub action: &'static str,
    pub source: std::io::Error,
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::Path;

    use super::FileError;

    /// Writes `bytes` to `path` via a temporary file in the same folder and a
    /// rename, so a crash never leaves a half-written file.
    pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
        let io = |action, source| FileError { path: path.display().to_string(), action, source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io("created", e))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        // No temporary file is left behind when either step fails.
        let written = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(|e| io("written", e))
    }

    pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
        std::fs::read(path).map_err(|source| FileError { path: path.display().to_string(), action: "read", source })
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{read, write_atomically};
