//! `octconv serve` against careless and hostile clients: the request
//! handling (`octconv::http`) on its own, then the server with real sockets.

mod common;

use std::path::Path;

use octconv::http::{answer, Answered, Site, ECHO_LIMIT};

/// A site with a page and one data file, in a fresh folder.
fn site(name: &str) -> Site {
    let dir = common::temp_dir(name);
    let (web, data) = (dir.join("web"), dir.join("data"));
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(web.join("index.html"), b"<p>octconv</p>").unwrap();
    std::fs::write(data.join("labels.gz"), b"labels").unwrap();
    std::fs::write(dir.join("secret"), b"outside").unwrap();
    Site { web, data }
}

fn ask(site: &Site, request: &[u8]) -> (Answered, String) {
    let mut response = Vec::new();
    let answered = answer(request, &mut response, site).unwrap();
    (answered, String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn requests_get_one_plain_answer_each() {
    let site = site("http");
    let status = |request: &[u8]| ask(&site, request).1.lines().next().unwrap_or("").to_string();
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK");
    let (_, page) = ask(&site, b"GET /index.html HTTP/1.1\r\n\r\n");
    assert!(page.ends_with("<p>octconv</p>"));
    // Cross-origin isolated, so the page may run its threaded engine (shared memory between Workers).
    assert!(page.contains("\r\nCross-Origin-Opener-Policy: same-origin\r\n"), "{page}");
    assert!(page.contains("\r\nCross-Origin-Embedder-Policy: require-corp\r\n"), "{page}");
    assert!(ask(&site, b"GET /data/labels.gz?v=2 HTTP/1.1\r\n\r\n").1.ends_with("labels"));
    assert_eq!(status(b"POST / HTTP/1.1\r\n\r\n"), "HTTP/1.1 405 Method Not Allowed");
    for climb in ["/../secret", "/data/../../secret", "/pkg/../../secret", "//etc/passwd"] {
        let request = format!("GET {climb} HTTP/1.1\r\n\r\n");
        assert_eq!(status(request.as_bytes()), "HTTP/1.1 404 Not Found", "{climb}");
    }
    // An unknown path is echoed at most ECHO_LIMIT characters long.
    let (_, reply) = ask(&site, format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)).as_bytes());
    assert!(reply.starts_with("HTTP/1.1 404") && reply.len() < ECHO_LIMIT + 200, "{}", reply.len());
    // A request line that never ends within the head's bound is refused, not read on.
    let (answered, reply) = ask(&site, format!("GET /{}", "b".repeat(20_000)).as_bytes());
    assert_eq!(answered, Answered::HeadTooLong);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    assert!(Path::new(&site.web).join("index.html").exists());
}

/// One client that asks for a large file and never reads it does not stop
/// `serve` from answering another; a long unknown path is not echoed whole.
#[test]
fn a_slow_client_does_not_stop_serve() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let dir = common::temp_dir("serve");
    let (web, data) = (dir.join("web"), dir.join("data"));
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    for wasm in ["octconv_bg.wasm", "octconv_relaxed_bg.wasm"] {
        std::fs::write(web.join("pkg").join(wasm), b"\0asm").unwrap();
    }
    std::fs::write(web.join("index.html"), b"<p>octconv</p>").unwrap();
    std::fs::write(data.join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    let port = 19000 + (std::process::id() % 1000) as u16;
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_octconv"))
        .args(["serve", "--port", &port.to_string(), "--web", web.to_str().unwrap(), "--data", data.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let connect = || {
        for _ in 0..100 {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                return stream;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("serve did not start");
    };
    let mut slow = connect();
    slow.write_all(b"GET /data/big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap(); // and never reads
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut other = connect();
    other.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let long = "a".repeat(5000);
    other.write_all(format!("GET /{long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut reply = String::new();
    let read = other.read_to_string(&mut reply);
    // A client that connects and sends nothing holds only its own connection,
    // and a request head over 8 KiB is refused rather than read on.
    let _silent = connect();
    let mut huge = connect();
    huge.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let _ = huge.write_all(format!("GET /{} HTTP/1.1\r\n\r\n", "b".repeat(20_000)).as_bytes());
    let mut refused = String::new();
    let _ = huge.read_to_string(&mut refused);
    server.kill().unwrap();
    let _ = server.wait();
    drop(slow);
    assert!(read.is_ok(), "the second client got no answer while the first was not reading: {read:?}");
    assert!(reply.starts_with("HTTP/1.1 404") && reply.len() < 2000, "{}", &reply[..reply.len().min(300)]);
    assert!(refused.starts_with("HTTP/1.1 431"), "{}", &refused[..refused.len().min(300)]);
}
