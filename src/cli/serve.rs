//! `octconv serve`: the web page on localhost, with the MNIST files at /data/.

use std::path::{Path, PathBuf};

use octconv::files::resolve_under;
use std::process::ExitCode;

use clap::Args;

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
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}; pick another --port", args.port))?;
    println!(
        "serving {} on http://127.0.0.1:{}/ (MNIST from {} at /data/)",
        args.web.display(),
        args.port,
        args.data.display()
    );
    // Requests are answered by a pool of threads, so a client that asks for
    // a large file and never reads it holds one thread, not the server.
    let server = std::sync::Arc::new(server);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (server, web, data) = (server.clone(), args.web.clone(), args.data.clone());
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    answer(request, &web, &data);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(ExitCode::SUCCESS)
}

/// Threads answering requests at once.
const WORKERS: usize = 16;
/// The longest request path echoed back in a 404.
const ECHO_LIMIT: usize = 200;

fn answer(request: tiny_http::Request, web: &Path, data: &Path) {
    let url = request.url().split('?').next().unwrap_or("/").to_string();
    let file = match url.strip_prefix("/data/") {
        Some(name) => resolve_under(data, name),
        None => resolve_under(web, &url),
    };
    let response = match file.and_then(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes))) {
        Some((path, bytes)) => {
            let header = tiny_http::Header::from_bytes("Content-Type", content_type(&path)).expect("a valid header");
            tiny_http::Response::from_data(bytes).with_header(header)
        }
        None => {
            let shown: String = url.chars().take(ECHO_LIMIT).collect();
            let more = if shown.len() < url.len() { "…" } else { "" };
            tiny_http::Response::from_data(format!("{shown}{more} not found").into_bytes()).with_status_code(404)
        }
    };
    let _ = request.respond(response);
}
