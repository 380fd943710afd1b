//! Shared by the test binaries: finding a GPU, or explaining loudly why not.

#![allow(dead_code)]

pub mod fast_cpu;

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

/// A fresh empty folder under the system temp dir, unique to `name` and this process.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("octconv-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The bytes of an IDX file of unsigned bytes with these dimensions.
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

/// A small learnable digit-like dataset: class k is a bright horizontal bar
/// at row 4 + 2k (jittered by a row, with noise), so a net can tell ten
/// classes apart after a few steps.
pub fn bars(count: usize, seed: u64) -> octconv::data::Dataset {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut images = Vec::with_capacity(count * 784);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let label = (i % 10) as u8;
        let row = 4 + 2 * label as usize + rng.random_range(0..2);
        let (start, len) = (rng.random_range(2..8), rng.random_range(12..18));
        for r in 0..28 {
            for c in 0..28 {
                let ink = r == row && (start..start + len).contains(&c);
                images.push(if ink { rng.random_range(200..=255) } else { rng.random_range(0..40) });
            }
        }
        labels.push(label);
    }
    octconv::data::Dataset { images, labels }
}

/// Writes `data` as the four MNIST files in `dir` (the same images for train and test).
pub fn write_mnist(dir: &std::path::Path, data: &octconv::data::Dataset) {
    let n = data.len() as u32;
    for split in ["train", "t10k"] {
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), idx_bytes(&[n, 28, 28], &data.images)).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), idx_bytes(&[n], &data.labels)).unwrap();
    }
}

/// Runs the `octconv` binary with `args`; returns (exit code, stdout, stderr)
/// after checking that it did not panic.
pub fn octconv(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_octconv")).args(args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stderr.contains("panicked"), "octconv {args:?} panicked:\n{stderr}");
    (out.status.code().unwrap_or(-1), stdout.to_string(), stderr.to_string())
}

/// Evaluates every node of `g` on the CPU twins from the given leaf values
/// (every input and parameter the ops read).
pub fn evaluate(
    g: &octconv::graph::Graph,
    leaves: &[(usize, octconv::tensor::Tensor)],
) -> Vec<octconv::tensor::Tensor> {
    use octconv::graph::Source;
    let mut values: Vec<Option<octconv::tensor::Tensor>> = vec![None; g.nodes.len()];
    for (id, value) in leaves {
        values[*id] = Some(value.clone());
    }
    for (id, node) in g.nodes.iter().enumerate() {
        if let Source::Op(op) = &node.source {
            let inputs: Vec<_> = node.inputs.iter().map(|&i| values[i].as_ref().unwrap()).collect();
            values[id] = Some(op.eval_cpu(&inputs).unwrap());
        }
    }
    values.into_iter().map(|v| v.expect("every node has a value")).collect()
}
