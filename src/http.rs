//! One HTTP/1.1 GET answered from two folders: the page and the MNIST files
//! (at `/data/`). Over any reader and writer, so the fuzz target and the
//! tests drive the same code as `octconv serve`, which adds the sockets,
//! threads and timeouts.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::files::{read_bounded, resolve_under};

/// The longest request head read (request line and headers).
pub const MAX_HEAD_BYTES: u64 = 8 << 10;
/// The largest file served (MNIST's largest is 47 MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// The longest request path echoed back in a 404.
pub const ECHO_LIMIT: usize = 200;

/// What is served: the page's folder, and the data folder at `/data/`.
pub struct Site {
    pub web: PathBuf,
    pub data: PathBuf,
}

/// How a request ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Answered {
    /// A file, a 404 or a 405 was sent.
    Complete,
    /// The request line was longer than [`MAX_HEAD_BYTES`] or never ended;
    /// a 431 was sent, and the caller should let the client read it.
    HeadTooLong,
}

/// Reads one request from `request` (at most [`MAX_HEAD_BYTES`]) and writes
/// the answer to `response`.
pub fn answer(request: impl Read, mut response: impl Write, site: &Site) -> std::io::Result<Answered> {
    let mut head = BufReader::new(request.take(MAX_HEAD_BYTES));
    let mut request_line = String::new();
    if head.read_line(&mut request_line).is_err() || !request_line.ends_with('\n') {
        respond(&mut response, "431 Request Header Fields Too Large", "text/plain", b"request too long")?;
        return Ok(Answered::HeadTooLong);
    }
    // The rest of the head, up to the blank line (read so the client is not cut off mid-send).
    let mut line = String::new();
    while head.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim_end() != "" {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" {
        respond(&mut response, "405 Method Not Allowed", "text/plain", b"only GET")?;
        return Ok(Answered::Complete);
    }
    let url = target.split('?').next().unwrap_or("/");
    let file = match url.strip_prefix("/data/") {
        Some(name) => resolve_under(&site.data, name),
        None => resolve_under(&site.web, url),
    };
    match file.and_then(|path| read_bounded(&path, MAX_FILE_BYTES).ok().map(|bytes| (path, bytes))) {
        Some((path, bytes)) => respond(&mut response, "200 OK", content_type(&path), &bytes)?,
        None => {
            let shown: String = url.chars().take(ECHO_LIMIT).collect();
            let more = if shown.len() < url.len() { "…" } else { "" };
            let body = format!("{shown}{more} not found");
            respond(&mut response, "404 Not Found", "text/plain", body.as_bytes())?;
        }
    }
    Ok(Answered::Complete)
}

/// Writes a whole response: status line, headers, the body. The page is
/// served cross-origin isolated (COOP and COEP), which browsers require
/// before they share memory between threads: the page's threaded engine.
pub fn respond(mut response: impl Write, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    response.write_all(head.as_bytes())?;
    response.write_all(body)?;
    response.flush()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "wgsl" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
