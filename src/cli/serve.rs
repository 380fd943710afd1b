//! `octconv serve`: the web page on localhost, with the MNIST files at /data/.
//!
//! A small HTTP/1.1 file server on the standard library rather than a crate,
//! because what it must bound is what the small servers on crates.io do not
//! let one set: each connection gets a thread of its own (up to a limit), a
//! request head of at most 8 KiB, and read and write timeouts, so a client
//! that stalls or never reads holds only its own connection, for a while.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use octconv::files::{read_bounded, resolve_under};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Folder with the four MNIST files, served at /data/ for training in the page
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// The page's folder (built with web/build.sh)
    #[arg(long, default_value = "web")]
    web: PathBuf,
}

/// Connections answered at once; more are told to come back (503).
const MAX_CONNECTIONS: usize = 64;
/// The longest request head read (request line and headers).
const MAX_HEAD_BYTES: u64 = 8 << 10;
/// How long a client may take to send its request, and to take each write.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest file served (MNIST's largest is 47 MB).
const MAX_FILE_BYTES: u64 = 256 << 20;
/// The longest request path echoed back in a 404.
const ECHO_LIMIT: usize = 200;

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

pub fn run(args: ServeArgs) -> Result<ExitCode, String> {
    if !args.web.join("pkg").join("octconv_bg.wasm").exists() {
        return Err(format!("{} has no built page (pkg/octconv_bg.wasm); run web/build.sh first", args.web.display()));
    }
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}; pick another --port", args.port))?;
    println!(
        "serving {} on http://127.0.0.1:{}/ (MNIST from {} at /data/)",
        args.web.display(),
        args.port,
        args.data.display()
    );
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            let _ = respond(&stream, "503 Service Unavailable", "text/plain", b"busy; try again");
            continue;
        }
        let (open, web, data) = (open.clone(), args.web.clone(), args.data.clone());
        std::thread::spawn(move || {
            answer(stream, &web, &data);
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one request (bounded in size and time) and answers it, then closes.
fn answer(stream: TcpStream, web: &Path, data: &Path) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(reader) = stream.try_clone() else { return };
    let mut head = BufReader::new(reader.take(MAX_HEAD_BYTES));
    let mut request_line = String::new();
    if head.read_line(&mut request_line).is_err() || !request_line.ends_with('\n') {
        let _ = respond(&stream, "431 Request Header Fields Too Large", "text/plain", b"request too long");
        // Let the client read the answer: closing with its bytes unread would reset the connection.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut (&stream).take(1 << 20), &mut std::io::sink());
        return;
    }
    // The rest of the head, up to the blank line (read so the client is not cut off mid-send).
    let mut line = String::new();
    while head.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim_end() != "" {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" {
        let _ = respond(&stream, "405 Method Not Allowed", "text/plain", b"only GET");
        return;
    }
    let url = target.split('?').next().unwrap_or("/");
    let file = match url.strip_prefix("/data/") {
        Some(name) => resolve_under(data, name),
        None => resolve_under(web, url),
    };
    match file.and_then(|path| read_bounded(&path, MAX_FILE_BYTES).ok().map(|bytes| (path, bytes))) {
        Some((path, bytes)) => {
            let _ = respond(&stream, "200 OK", content_type(&path), &bytes);
        }
        None => {
            let shown: String = url.chars().take(ECHO_LIMIT).collect();
            let more = if shown.len() < url.len() { "…" } else { "" };
            let _ = respond(&stream, "404 Not Found", "text/plain", format!("{shown}{more} not found").as_bytes());
        }
    }
}

fn respond(mut stream: &TcpStream, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}
