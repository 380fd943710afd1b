//! The fuzz targets' bounded run in the suite, on stable Rust. The targets
//! (`tests/fuzz/targets.rs`: the IDX reader, the checkpoint loader, image
//! preparation, `serve`'s request handling) are fuzzed for real with
//! cargo-fuzz (`tests/fuzz/Cargo.toml`, nightly); here every kept input
//! (`tests/fuzz/corpus/<target>/`, `tests/fuzz/artifacts/<target>/`) is run
//! again, then byte-mutated copies of them, and each must neither panic nor
//! allocate without bound (a counting allocator checks each input's peak).
//! A case that fails is kept in `artifacts/<target>/` as `found-<hash>`.
//!
//! Each target runs `OCTCONV_FUZZ_SECONDS` (default 2) seconds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

#[path = "fuzz/targets.rs"]
mod targets;

/// Bytes allocated now and the most at once since the last reset, for the thread-shared process.
struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most one input may make the process hold beyond what it held before
/// (all targets run in parallel threads, so this bounds their sum).
const ALLOCATION_BOUND: usize = 1 << 30;

fn seconds() -> u64 {
    std::env::var("OCTCONV_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2)
}

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(kind).join(target)
}

/// The target's seeds and minimised corpus, then the cases fuzzing found.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = ["corpus", "artifacts"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(fuzz_dir(kind, target)).ok())
        .flat_map(|dir| dir.flatten().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus for {target} in tests/fuzz/corpus/{target}");
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// A mutated copy of a seed: flipped, overwritten, inserted, removed or spliced bytes.
fn mutate(rng: &mut impl Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=8) {
        let len = bytes.len().max(1);
        match rng.random_range(0..7) {
            0 if !bytes.is_empty() => {
                let i = rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !bytes.is_empty() => {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = [0u8, 1, 0x7f, 0x80, 0xff][rng.random_range(0..5)];
            }
            2 => {
                // A big-endian or little-endian 32-bit value, as headers hold.
                let i = rng.random_range(0..len);
                let v: u32 = [0, 1, 28, 0xffff, 0x7fff_ffff, 0xffff_ffff, rng.random()][rng.random_range(0..7)];
                let word = if rng.random() { v.to_be_bytes() } else { v.to_le_bytes() };
                for (k, b) in word.iter().enumerate() {
                    if i + k < bytes.len() {
                        bytes[i + k] = *b;
                    }
                }
            }
            3 => {
                let i = rng.random_range(0..=bytes.len());
                let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
                bytes.splice(i..i, extra);
            }
            4 if !bytes.is_empty() => {
                let i = rng.random_range(0..bytes.len());
                let end = (i + rng.random_range(1..64)).min(bytes.len());
                bytes.drain(i..end);
            }
            5 => bytes.truncate(rng.random_range(0..=bytes.len())),
            _ => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let cut = rng.random_range(0..=bytes.len());
                let from = rng.random_range(0..=other.len());
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from..]);
            }
        }
    }
    bytes
}

/// Runs `target` on mutated inputs for the configured time; fails (keeping
/// the input) on a panic or an allocation over the bound. Returns the count.
fn fuzz(name: &str, target: impl Fn(&[u8])) -> usize {
    let seeds = corpus(name);
    let mut rng = rand::rngs::StdRng::seed_from_u64(name.len() as u64 * 7919 + seconds());
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut runs = 0;
    for seed in &seeds {
        target(seed); // the seeds themselves
    }
    while Instant::now() < deadline {
        let input = mutate(&mut rng, &seeds);
        let before = NOW.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let grew = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        if outcome.is_err() || grew > ALLOCATION_BOUND {
            let hash = input.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3));
            let dir = fuzz_dir("artifacts", name);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("found-{hash:016x}"));
            std::fs::write(&path, &input).unwrap();
            let what = if outcome.is_err() { "panicked".to_string() } else { format!("allocated {grew} bytes") };
            panic!("{name}: {what} on {} (kept as {})", input.len(), path.display());
        }
        runs += 1;
    }
    println!("{name}: {runs} inputs in {} s, no panic, no allocation over {} MiB", seconds(), ALLOCATION_BOUND >> 20);
    runs
}

#[test]
fn idx_reader() {
    assert!(fuzz("idx", targets::idx) > 0);
}

#[test]
fn checkpoint_loader() {
    assert!(fuzz("checkpoint", targets::checkpoint) > 0);
}

#[test]
fn image_preparation() {
    assert!(fuzz("image", targets::image) > 0);
}

#[test]
fn serve_request() {
    assert!(fuzz("serve_request", targets::serve_request) > 0);
}

/// Writes the seed corpus (run once, by hand: `cargo test --test fuzz -- --ignored`).
#[test]
#[ignore]
fn write_seed_corpus() {
    use std::collections::HashMap;
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(fuzz_dir("corpus", target)).unwrap();
        std::fs::write(fuzz_dir("corpus", target).join(name), bytes).unwrap();
    };
    let idx = |dims: &[u32], data: &[u8]| {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
        b.extend(data);
        b
    };
    let gz = |bytes: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    let images = idx(&[2, 28, 28], &(0..1568).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    write("idx", "seed-images", &images);
    write("idx", "seed-images.gz", &gz(&images));
    write("idx", "seed-labels.gz", &gz(&idx(&[5], &[1, 2, 3, 4, 5])));
    let (w, b) = (octconv::Tensor::uniform(&[2, 3], -1.0, 1.0, 1), octconv::Tensor::uniform(&[2], -1.0, 1.0, 2));
    let meta = HashMap::from([("alpha".to_string(), "0.25".to_string())]);
    write("checkpoint", "seed-model", &octconv::checkpoint::to_bytes(&[("w".into(), &w), ("b".into(), &b)], &meta));
    let state = octconv::optim::OptimizerState {
        step: 3,
        moments: vec![("w".into(), w.clone(), w.clone()), ("b".into(), b.clone(), b.clone())],
    };
    write("checkpoint", "seed-adam", &octconv::checkpoint::optimizer_to_bytes(&state));
    for (format, name) in [(image::ImageFormat::Png, "seed.png"), (image::ImageFormat::Jpeg, "seed.jpg")] {
        let img = image::GrayImage::from_fn(20, 20, |x, y| {
            image::Luma([if (5..15).contains(&x) && y == 9 { 0 } else { 255 }])
        });
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).unwrap();
        write("image", name, bytes.get_ref());
    }
    write("serve_request", "seed-index", b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
    write("serve_request", "seed-data", b"GET /data/train-labels-idx1-ubyte.gz?x=1 HTTP/1.1\r\n\r\n");
    write("serve_request", "seed-climb", b"GET /../secret HTTP/1.1\r\n\r\n");
    write("serve_request", "seed-post", b"POST / HTTP/1.1\r\n\r\n");
    write("serve_request", "seed-folder", b"GET /pkg/ HTTP/1.0\r\nA: b\r\n\r\n");
}
