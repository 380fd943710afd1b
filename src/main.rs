//! The `octconv` command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_mesa();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Mesa's drivers print "XDG_RUNTIME_DIR is invalid or not set" on every
/// device they open when that variable is missing (containers, CI); give
/// them a private folder so the message, which is not ours, stays away.
fn quiet_mesa() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join("octconv-runtime");
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if dir.is_dir() {
            // Single-threaded here, before anything reads the environment.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}
