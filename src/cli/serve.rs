//! `octconv serve`: the web page on localhost, with the MNIST files at /data/.
//!
//! A small HTTP/1.1 file server on the standard library rather than a crate,
//! because what it must bound is what the small servers on crates.io do not
//! let one set: each connection gets a thread of its own (up to a limit), a
//! request head of at most 8 KiB, and read and write timeouts, so a client
//! that stalls or never reads holds only its own connection, for a while.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use octconv::http::{self, Answered, Site};

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
/// How long a client may take to send its request, and to take each write.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(args: ServeArgs) -> Result<ExitCode, String> {
    // Both builds of the page's wasm (web/wasm.js picks one in the browser).
    for wasm in ["octconv_bg.wasm", "octconv_relaxed_bg.wasm"] {
        if !args.web.join("pkg").join(wasm).exists() {
            return Err(format!(
                "{} has no built page (pkg/{wasm} is missing); run web/build.sh first",
                args.web.display()
            ));
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}; pick another --port", args.port))?;
    println!(
        "serving {} on http://127.0.0.1:{}/ (MNIST from {} at /data/)",
        args.web.display(),
        args.port,
        args.data.display()
    );
    let site = Arc::new(Site { web: args.web, data: args.data });
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            let _ = http::respond(&stream, "503 Service Unavailable", "text/plain", b"busy; try again");
            continue;
        }
        let (open, site) = (open.clone(), site.clone());
        std::thread::spawn(move || {
            answer(stream, &site);
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// Answers one request (bounded in size and time), then closes.
fn answer(stream: TcpStream, site: &Site) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Ok(Answered::HeadTooLong) = http::answer(&stream, &stream, site) {
        // Let the client read the answer: closing with its bytes unread would reset the connection.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut (&stream).take(1 << 20), &mut std::io::sink());
    }
}
