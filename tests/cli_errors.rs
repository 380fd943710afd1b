//! Bad input to the command line: one clear sentence naming the file or
//! value, a non-zero exit, never a panic.

mod common;

use std::path::Path;
use std::process::Command;

const SEED_CHECKPOINT: &str = "tests/fixtures/pytorch_seed.safetensors";

/// Runs `octconv args…` and returns (exit code, stderr).
fn octconv(args: &[&str]) -> (i32, String) {
    let (code, _, stderr) = common::octconv(args);
    (code, stderr)
}

fn fails_with(args: &[&str], expected: &[&str]) {
    let (code, stderr) = octconv(args);
    assert_ne!(code, 0, "octconv {args:?} succeeded");
    // The error is the last line (progress lines may come before it).
    assert!(stderr.lines().last().is_some_and(|l| l.starts_with("error: ")), "octconv {args:?}: {stderr}");
    for part in expected {
        assert!(stderr.contains(part), "octconv {args:?}: expected {part:?} in:\n{stderr}");
    }
}

fn eval_on(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap().to_string();
    ["eval", "--model", SEED_CHECKPOINT, "--device", "cpu", "--offline", "--data", &dir].map(String::from).to_vec()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_missing_data_folder_says_what_to_put_where() {
    let dir = common::temp_dir("missing");
    let missing = dir.join("nothing-here");
    let path = missing.to_str().unwrap();
    fails_with(
        &["train", "--data", path, "--offline", "--device", "cpu"],
        &["MNIST is not in", path, "train-images-idx3-ubyte.gz", "--data DIR"],
    );
}

#[test]
fn truncated_wrong_magic_and_mismatched_files_are_named() {
    let dir = common::temp_dir("idx");
    common::write_mnist(&dir, &common::bars(20, 1));
    let images = dir.join("t10k-images-idx3-ubyte");
    let labels = dir.join("t10k-labels-idx1-ubyte");

    let good = std::fs::read(&images).unwrap();
    std::fs::write(&images, &good[..good.len() - 100]).unwrap();
    fails_with(&args(&eval_on(&dir)), &[images.to_str().unwrap(), "is truncated"]);
    std::fs::write(&images, &good).unwrap();

    std::fs::write(&labels, b"<html>not found</html>").unwrap();
    fails_with(&args(&eval_on(&dir)), &[labels.to_str().unwrap(), "is not an IDX file"]);

    std::fs::write(&labels, common::idx_bytes(&[19], &[3; 19])).unwrap();
    fails_with(&args(&eval_on(&dir)), &[labels.to_str().unwrap(), "has 19 labels but", "has 20 images"]);

    std::fs::write(&labels, common::idx_bytes(&[20], &[12; 20])).unwrap();
    fails_with(&args(&eval_on(&dir)), &["contains label 12"]);
}

#[test]
fn a_checkpoint_of_another_shape_is_refused() {
    let dir = common::temp_dir("ckpt");
    let mut saved = octconv::checkpoint::load(Path::new(SEED_CHECKPOINT)).unwrap();
    let weight = &mut saved.params.tensors.iter_mut().find(|(n, _)| n == "conv1.convH2H.weight").unwrap().1;
    *weight = octconv::Tensor::zeros(&[4, 1, 3, 3]);
    let path = dir.join("other.safetensors");
    octconv::checkpoint::save(&path, &saved.params, &saved.metadata).unwrap();
    let image = dir.join("digit.png");
    image::GrayImage::new(28, 28).save(&image).unwrap();
    fails_with(
        &["predict", "--model", path.to_str().unwrap(), image.to_str().unwrap(), "--device", "cpu"],
        &["conv1.convH2H.weight", "[4, 1, 3, 3]", "another model"],
    );

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not safetensors").unwrap();
    fails_with(&["eval", "--model", garbage.to_str().unwrap(), "--device", "cpu"], &["is not a safetensors file"]);
}

#[test]
fn an_unreadable_image_is_named() {
    let dir = common::temp_dir("png");
    let bad = dir.join("scan.png");
    std::fs::write(&bad, b"this is text, not a PNG").unwrap();
    fails_with(
        &["predict", "--model", SEED_CHECKPOINT, bad.to_str().unwrap(), "--device", "cpu"],
        &[bad.to_str().unwrap(), "cannot be read as a PNG or JPEG image"],
    );
}

#[test]
fn bad_numbers_are_refused() {
    fails_with(&["train", "--lr=-1", "--device", "cpu"], &["--lr must be a positive number"]);
    fails_with(&["train", "--batch", "0", "--device", "cpu"], &["--batch and --epochs must be at least 1"]);
}

/// A page built before its relaxed-SIMD build existed is named, not served
/// to a browser that would ask for the missing file.
#[test]
fn a_page_without_both_wasm_builds_is_named() {
    let web = common::temp_dir("serve-stale").join("web");
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(web.join("pkg/octconv_bg.wasm"), b"\0asm").unwrap();
    // A port already taken: were the page accepted, serve would fail there rather than serve forever.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    fails_with(
        &["serve", "--port", &port, "--web", web.to_str().unwrap()],
        &["pkg/octconv_relaxed_bg.wasm is missing", "run web/build.sh first"],
    );
}

/// A misspelt kernel-variant override is refused by name, not silently ignored.
#[test]
fn a_bad_tiling_override_is_named() {
    if common::gpu().is_none() {
        return; // the setting is read when a GPU device opens
    }
    let out =
        Command::new(env!("CARGO_BIN_EXE_octconv")).arg("check").env("OCTCONV_TILING", "register").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "octconv check accepted OCTCONV_TILING=register");
    assert!(stderr.contains("OCTCONV_TILING is \"register\"; set it to registers, wide or workgroup"), "{stderr}");
}

#[test]
fn a_limit_beyond_the_data_is_named() {
    let dir = common::temp_dir("limit");
    common::write_mnist(&dir, &common::bars(20, 1));
    let path = dir.to_str().unwrap();
    fails_with(
        &["train", "--limit", "100", "--data", path, "--offline", "--device", "cpu"],
        &["--limit 100 is more than the 20 training images; use at most 20"],
    );
}

/// A learning rate that makes training diverge ends with one sentence and a
/// non-zero exit, and the checkpoint already at --out stays as it was.
#[test]
fn a_diverging_run_keeps_the_last_good_checkpoint() {
    let dir = common::temp_dir("diverge");
    common::write_mnist(&dir, &common::bars(64, 2));
    let data = dir.to_str().unwrap();
    let out = dir.join("model.safetensors");
    let out_str = out.to_str().unwrap();
    let (code, _, stderr) =
        common::octconv(&["train", "--epochs", "1", "--data", data, "--offline", "--device", "cpu", "--out", out_str]);
    assert_eq!(code, 0, "{stderr}");
    let good = std::fs::read(&out).unwrap();
    fails_with(
        &[
            "train",
            "--epochs",
            "1",
            "--batch",
            "8",
            "--lr",
            "1e9",
            "--data",
            data,
            "--offline",
            "--device",
            "cpu",
            "--out",
            out_str,
        ],
        &["training diverged in epoch 1", "try"],
    );
    assert_eq!(std::fs::read(&out).unwrap(), good, "the good checkpoint was replaced");

    // A checkpoint holding NaN is refused by eval, not scored near chance.
    let mut saved = octconv::checkpoint::load(&out).unwrap();
    saved.params.tensors[0].1.data[0] = f32::NAN;
    let nan = dir.join("nan.safetensors");
    octconv::checkpoint::save(&nan, &saved.params, &saved.metadata).unwrap();
    fails_with(
        &["eval", "--model", nan.to_str().unwrap(), "--data", data, "--offline", "--device", "cpu"],
        &["not finite numbers", "use an earlier checkpoint"],
    );
}

/// A batch larger than the data is shrunk to the data, with a notice, rather
/// than allocated for.
#[test]
fn a_batch_larger_than_the_data_is_capped() {
    let dir = common::temp_dir("big-batch");
    common::write_mnist(&dir, &common::bars(30, 4));
    let out = dir.join("m.safetensors");
    let (code, stdout, stderr) = common::octconv(&[
        "train",
        "--epochs",
        "1",
        "--batch",
        "100000",
        "--data",
        dir.to_str().unwrap(),
        "--offline",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("--batch 100000 is more than the 30 training images; using batches of 30"), "{stderr}");
    assert!(stdout.contains("batch 30"), "{stdout}");
}

/// An --out that cannot be written is named before any training, and no
/// temporary file is left behind.
#[test]
fn an_unwritable_out_is_named_before_training() {
    let dir = common::temp_dir("out-dir");
    let folder = dir.to_str().unwrap();
    fails_with(&["train", "--out", folder, "--device", "cpu", "--offline"], &["is a folder; give a file name"]);
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let below_a_file = file.join("model.safetensors");
    fails_with(
        &["train", "--out", below_a_file.to_str().unwrap(), "--device", "cpu", "--offline"],
        &["cannot be written", "choose a folder you can write to"],
    );
    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.path().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A resumed run continues the metrics file: the epochs before the resume stay.
#[test]
fn a_resumed_run_keeps_the_earlier_metrics() {
    let dir = common::temp_dir("resume-metrics");
    common::write_mnist(&dir, &common::bars(32, 6));
    let data = dir.to_str().unwrap();
    let out = dir.join("m.safetensors");
    let out = out.to_str().unwrap();
    let base = ["train", "--data", data, "--offline", "--device", "cpu", "--batch", "16", "--out", out];
    let (code, _, stderr) = common::octconv(&[&base[..], &["--epochs", "1"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = common::octconv(&[&base[..], &["--epochs", "3", "--resume", out]].concat());
    assert_eq!(code, 0, "{stderr}");
    let csv = std::fs::read_to_string(dir.join("m.metrics.csv")).unwrap();
    let epochs: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(epochs, ["1", "2", "3"], "{csv}");
}

/// A device or a FIFO given as a checkpoint is refused before it is read
/// (neither reading /dev/zero until memory runs out nor waiting on a FIFO).
#[test]
fn a_checkpoint_that_is_not_a_regular_file_is_refused() {
    fails_with(&["eval", "--model", "/dev/zero", "--device", "cpu", "--offline"], &["/dev/zero", "not a regular file"]);
    let dir = common::temp_dir("fifo");
    let fifo = dir.join("model.safetensors");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        fails_with(
            &["eval", "--model", fifo.to_str().unwrap(), "--device", "cpu", "--offline"],
            &["not a regular file"],
        );
    }
}

/// Resuming with another batch or seed than the checkpoint's says what
/// differs and continues with the checkpoint's, unless --new-recipe.
#[test]
fn resuming_with_another_recipe_says_what_differs() {
    let dir = common::temp_dir("resume-recipe");
    common::write_mnist(&dir, &common::bars(64, 7));
    let (data, out) = (dir.to_str().unwrap(), dir.join("m.safetensors"));
    let out = out.to_str().unwrap();
    let base = ["train", "--data", data, "--offline", "--device", "cpu", "--out", out];
    let (code, _, stderr) = common::octconv(&[&base[..], &["--epochs", "1", "--batch", "16", "--seed", "3"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = common::octconv(&[&base[..], &["--epochs", "2", "--resume", out]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("batch 16 (this command: 64), seed 3 (this command: 1)"), "{stderr}");
    assert!(stdout.contains("batch 16") && stdout.contains("seed 3"), "{stdout}");
    let (code, stdout, stderr) =
        common::octconv(&[&base[..], &["--epochs", "3", "--resume", out, "--new-recipe", "--batch", "8"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("as --new-recipe asks") && stdout.contains("batch 8"), "{stderr}\n{stdout}");
}

/// MNIST's files read as Fashion-MNIST are named as MNIST's (their checksums
/// are known). Runs where the real MNIST is at ../shared/data/mnist (as in CI).
#[test]
fn mnist_files_given_as_fashion_are_named() {
    let real = Path::new("../shared/data/mnist");
    if !real.join("t10k-labels-idx1-ubyte.gz").exists() {
        eprintln!("skipped: no real MNIST at {}", real.display());
        return;
    }
    fails_with(
        &[
            "eval",
            "--model",
            SEED_CHECKPOINT,
            "--dataset",
            "fashion",
            "--data",
            real.to_str().unwrap(),
            "--device",
            "cpu",
            "--offline",
        ],
        &["holds MNIST's labels, not Fashion-MNIST's; use --dataset mnist"],
    );
}

/// Messages that used to mislead: a negative number read as a flag, a
/// PyTorch file, a file where a folder belongs, a shader folder that is not
/// there, and a shader error counted from common.wgsl's first line.
#[test]
fn misleading_messages_are_plain_now() {
    fails_with(&["train", "--lr", "-1", "--device", "cpu"], &["--lr must be a positive number, got -1"]);
    let dir = common::temp_dir("messages");
    let pt = dir.join("model.pt");
    std::fs::write(&pt, b"PK\x03\x04 a zip archive").unwrap();
    fails_with(&["eval", "--model", pt.to_str().unwrap(), "--device", "cpu"], &["is a PyTorch .pt file", "save_file"]);
    fails_with(
        &["eval", "--model", SEED_CHECKPOINT, "--data", "Cargo.toml", "--device", "cpu", "--offline"],
        &["Cargo.toml is a file; --data takes the folder"],
    );
    if common::gpu().is_none() {
        return;
    }
    let run = |shaders: &Path| {
        let out =
            Command::new(env!("CARGO_BIN_EXE_octconv")).arg("check").env("OCTCONV_SHADERS", shaders).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, text) = run(&dir.join("no-such-folder"));
    assert!(
        code != Some(0) && text.contains("OCTCONV_SHADERS is") && text.contains("a folder of .wgsl files"),
        "{text}"
    );
    let pool = include_str!("../shaders/pool.wgsl").replacen("flat_index(id, groups)", "flat_index(id groups)", 1);
    let line = pool.lines().position(|l| l.contains("flat_index(id groups)")).unwrap() + 1;
    std::fs::write(dir.join("pool.wgsl"), pool).unwrap();
    let (code, text) = run(&dir);
    assert!(code != Some(0) && text.contains(&format!("pool.wgsl:{line}:")), "{text}");
}

/// An Adam state whose step count is not what the checkpoint's epochs took,
/// and a split without images, are each one sentence.
#[test]
fn a_foreign_adam_state_and_an_empty_split_are_named() {
    let dir = common::temp_dir("foreign-adam");
    common::write_mnist(&dir, &common::bars(32, 8));
    let (data, out) = (dir.to_str().unwrap(), dir.join("m.safetensors"));
    let out = out.to_str().unwrap();
    let base = ["train", "--data", data, "--offline", "--device", "cpu", "--batch", "16", "--out", out];
    let (code, _, stderr) = common::octconv(&[&base[..], &["--epochs", "1"]].concat());
    assert_eq!(code, 0, "{stderr}");
    // Another run's Adam state (3 steps, not 2) in the file the checkpoint names.
    let adam = dir.join("m.adam-epoch1.safetensors");
    let net = octconv::nn::SeedNet::new();
    let mut state = octconv::checkpoint::load_optimizer(&adam, &net.params()).unwrap();
    state.step = 3;
    octconv::checkpoint::save_optimizer(&adam, &state).unwrap();
    fails_with(&[&base[..], &["--epochs", "2", "--resume", out]].concat(), &["has taken 3 steps", "take 2"]);

    let empty = common::temp_dir("empty-split");
    common::write_mnist(&empty, &octconv::data::Dataset { images: vec![], labels: vec![] });
    fails_with(&["train", "--data", empty.to_str().unwrap(), "--offline", "--device", "cpu"], &["holds no images"]);
}
