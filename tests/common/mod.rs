//! Shared by the test binaries: finding a GPU, or explaining loudly why not.

#![allow(dead_code)]

use octconv::gpu::{AdapterChoice, Gpu};

/// A device on the adapter chosen by OCTCONV_BACKEND / OCTCONV_ADAPTER.
/// Without one the test is skipped with a message, unless
/// OCTCONV_REQUIRE_GPU=1 is set (as in CI): then it fails.
pub fn gpu() -> Option<Gpu> {
    match pollster::block_on(Gpu::new(&AdapterChoice::from_env())) {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var("OCTCONV_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("OCTCONV_REQUIRE_GPU=1 but no GPU device could be opened: {e}")
        }
        Err(e) => {
            eprintln!("\n*** SKIPPING GPU TEST: {e} (set OCTCONV_REQUIRE_GPU=1 to make this a failure) ***\n");
            None
        }
    }
}
