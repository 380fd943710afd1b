//! What each fuzz target does with one input, in one place: the cargo-fuzz
//! targets (`fuzz_targets/`, coverage-guided, nightly) and the suite's bounded
//! run (`tests/fuzz.rs`, stable) both call these. Each must return without a
//! panic and within the allocation bound whatever the bytes are.

use std::path::PathBuf;
use std::sync::OnceLock;

/// An IDX file, gzipped or not.
pub fn idx(bytes: &[u8]) {
    let _ = octconv::data::parse_idx(bytes, "fuzz");
}

/// A model checkpoint or an Adam state file, read against a small net's parameters.
pub fn checkpoint(bytes: &[u8]) {
    let specs = [
        octconv::nn::ParamSpec { name: "w".into(), shape: vec![2, 3], fan_in: 3 },
        octconv::nn::ParamSpec { name: "b".into(), shape: vec![2], fan_in: 3 },
    ];
    if let Ok(checkpoint) = octconv::checkpoint::from_bytes(bytes, "fuzz") {
        let _ = checkpoint.params_for(&specs, "fuzz");
        let _ = checkpoint.alpha("fuzz");
    }
    let _ = octconv::checkpoint::optimizer_from_bytes(bytes, &specs, "fuzz");
}

/// An image file given to `predict` (PNG or JPEG, any size, any content).
pub fn image(bytes: &[u8]) {
    let _ = octconv::data::digit_from_bytes(bytes, "fuzz");
}

/// A request to `serve`: whatever it asks, the answer is one well-formed
/// response and never shows a file outside the two served folders.
pub fn serve_request(bytes: &[u8]) {
    let site = site();
    let mut response = Vec::new();
    let _ = octconv::http::answer(bytes, &mut response, site);
    assert!(response.starts_with(b"HTTP/1.1 "), "not an HTTP response: {:?}", String::from_utf8_lossy(&response));
    // A 404 echoes the request's path, so only a file served (200) can show the secret.
    let secret = SECRET.as_bytes();
    let served_secret = response.starts_with(b"HTTP/1.1 200") && response.windows(secret.len()).any(|w| w == secret);
    assert!(!served_secret, "served a file outside the site for {bytes:?}");
    // The path resolution alone, on the raw bytes as a path.
    if let Some(path) = octconv::files::resolve_under(&site.web, &String::from_utf8_lossy(bytes)) {
        assert!(path.starts_with(&site.web), "{bytes:?} resolved outside the root: {}", path.display());
    }
}

/// The contents of a file beside (outside) the served folders.
const SECRET: &str = "outside-the-site-5b1f";

/// A temporary site: web/ with a page and pkg/, data/ with one file, and a
/// secret file beside both that must never be served.
fn site() -> &'static octconv::http::Site {
    static SITE: OnceLock<octconv::http::Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let root: PathBuf = std::env::temp_dir().join(format!("octconv-fuzz-site-{}", std::process::id()));
        let (web, data) = (root.join("web"), root.join("data"));
        std::fs::create_dir_all(web.join("pkg")).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(web.join("index.html"), "<p>page</p>").unwrap();
        std::fs::write(web.join("pkg/octconv.js"), "export {}").unwrap();
        std::fs::write(data.join("train-labels-idx1-ubyte.gz"), [0u8; 8]).unwrap();
        std::fs::write(root.join("secret"), SECRET).unwrap();
        octconv::http::Site { web, data }
    })
}
