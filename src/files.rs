//! File helpers shared by checkpoints and downloaded data.

/// A file operation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot be {action}: {source}; {}", advice(.action))]
pub struct FileError {
    pub path: String,
    pub action: &'static str,
    pub source: std::io::Error,
}

/// What to do when a file cannot be read, or written.
fn advice(action: &str) -> &'static str {
    match action {
        "read" => "check the path and that you may read it",
        _ => "choose a place you can write to, with room to spare",
    }
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

    /// The file a request path names under `root` (a folder's index.html),
    /// or None for anything that would climb out of it (`..`, a root, a prefix).
    pub fn resolve_under(root: &Path, url_path: &str) -> Option<std::path::PathBuf> {
        use std::path::Component;
        let relative = Path::new(url_path.trim_start_matches('/'));
        if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        let path = root.join(relative);
        Some(if path.is_dir() { path.join("index.html") } else { path })
    }

    /// The bytes of a regular file of at most `limit` bytes: a device
    /// (/dev/zero), a FIFO or a folder is refused before reading, so a
    /// mistaken path can neither hang octconv nor fill its memory.
    pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
        let fail = |action, source| FileError { path: path.display().to_string(), action, source };
        let meta = std::fs::metadata(path).map_err(|e| fail("read", e))?;
        let refuse = |why: String| fail("read", std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
        if !meta.is_file() {
            return Err(refuse("it is not a regular file; give the path of a file".into()));
        }
        if meta.len() > limit {
            return Err(refuse(format!(
                "it has {} bytes, more than the {} MiB octconv reads here",
                meta.len(),
                limit >> 20
            )));
        }
        std::fs::read(path).map_err(|e| fail("read", e))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{read_bounded, resolve_under, write_atomically};
