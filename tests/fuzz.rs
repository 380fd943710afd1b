//! Mutation fuzzing on stable Rust: the IDX reader, the checkpoint loader,
//! image preparation and `serve`'s path resolution get byte-mutated copies of
//! the seeds in `tests/fuzz/<target>/` and must neither panic nor allocate
//! without bound (a counting allocator checks each input's peak). A case that
//! fails is written next to the seeds as `found-<hash>` and kept.
//!
//! In the suite each target runs `OCTCONV_FUZZ_SECONDS` (default 2) seconds;
//! long runs: `OCTCONV_FUZZ_SECONDS=600 cargo test --release --test fuzz`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

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

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(corpus_dir(target)).expect("a seed corpus").flatten().map(|e| e.path()).collect();
    files.sort();
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
            let path = corpus_dir(name).join(format!("found-{hash:016x}"));
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
    let runs = fuzz("idx", |bytes| {
        let _ = octconv::data::parse_idx(bytes, "fuzz");
    });
    assert!(runs > 0);
}

#[test]
fn checkpoint_loader() {
    let specs = vec![
        octconv::nn::ParamSpec { name: "w".into(), shape: vec![2, 3], fan_in: 3 },
        octconv::nn::ParamSpec { name: "b".into(), shape: vec![2], fan_in: 3 },
    ];
    let runs = fuzz("checkpoint", |bytes| {
        if let Ok(checkpoint) = octconv::checkpoint::from_bytes(bytes, "fuzz") {
            let _ = checkpoint.params_for(&specs, "fuzz");
            let _ = checkpoint.alpha("fuzz");
        }
        let _ = octconv::checkpoint::optimizer_from_bytes(bytes, &specs, "fuzz");
    });
    assert!(runs > 0);
}

#[test]
fn image_preparation() {
    let runs = fuzz("image", |bytes| {
        let _ = octconv::data::digit_from_bytes(bytes, "fuzz");
    });
    assert!(runs > 0);
}

#[test]
fn serve_paths() {
    let root = std::env::temp_dir().join(format!("octconv-fuzz-root-{}", std::process::id()));
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    let runs = fuzz("serve", |bytes| {
        let url = String::from_utf8_lossy(bytes);
        if let Some(path) = octconv::files::resolve_under(&root, &url) {
            assert!(path.starts_with(&root), "{url:?} resolved outside the root: {}", path.display());
        }
    });
    assert!(runs > 0);
}

/// Writes the seed corpus (run once, by hand: `cargo test --test fuzz -- --ignored`).
#[test]
#[ignore]
fn write_seed_corpus() {
    use std::collections::HashMap;
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus_dir(target)).unwrap();
        std::fs::write(corpus_dir(target).join(name), bytes).unwrap();
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
    write("serve", "seed-index", b"/index.html");
    write("serve", "seed-data", b"/data/train-images-idx3-ubyte.gz");
    write("serve", "seed-climb", b"/../etc/passwd");
}
