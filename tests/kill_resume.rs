//! Training killed with SIGKILL at random moments (saves included) always
//! leaves a checkpoint that loads with the Adam state it names, and resuming
//! from it reaches exactly the weights of a run never interrupted.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use octconv::checkpoint;
use octconv::nn::SeedNet;
use rand::{Rng, SeedableRng};

const EPOCHS: &str = "4";

fn train(data: &Path, out: &Path, resume: bool) -> Child {
    let mut args = vec!["train", "--data", data.to_str().unwrap(), "--offline", "--device", "cpu"];
    args.extend(["--batch", "16", "--epochs", EPOCHS, "--seed", "5", "--out", out.to_str().unwrap()]);
    if resume {
        args.extend(["--resume", out.to_str().unwrap()]);
    }
    Command::new(env!("CARGO_BIN_EXE_octconv"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Whatever a kill left at `out` loads, with the Adam state its metadata names.
fn assert_consistent(out: &Path) {
    if !out.exists() {
        return; // killed before the first epoch ended
    }
    let saved = checkpoint::load(out).expect("the checkpoint loads");
    let net = SeedNet::new();
    saved.params_for(&net.params(), "out").expect("its parameters are the model's");
    let state = checkpoint::load_training_optimizer(out, &saved, &net.params()).expect("its Adam state loads");
    assert!(state.is_some(), "the checkpoint's Adam state is there");
    let epoch = &saved.metadata["epoch"];
    assert_eq!(saved.metadata[checkpoint::OPTIMIZER_FILE], format!("out.adam-epoch{epoch}.safetensors"));
}

/// Resumes (or starts) until the run has finished its epochs.
fn finish(data: &Path, out: &Path) {
    let status = train(data, out, out.exists()).wait().unwrap();
    let done = checkpoint::load(out).ok().and_then(|c| c.metadata.get("epoch").cloned());
    assert!(status.success() || done.as_deref() == Some(EPOCHS), "the resumed run failed: {status}");
}

#[test]
fn killed_runs_resume_to_the_same_weights() {
    let dir = common::temp_dir("kill");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::write_mnist(&data, &common::bars(96, 9));

    let reference = dir.join("reference").join("out.safetensors");
    assert!(train(&data, &reference, false).wait().unwrap().success());
    // In the model's parameter order (a file's tensors come in no fixed order).
    let weights = |path: &Path| checkpoint::load(path).unwrap().params_for(&SeedNet::new().params(), "out").unwrap();
    let expected = weights(&reference);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);

    for round in 0..10 {
        let out = dir.join(format!("round{round}")).join("out.safetensors");
        // Up to three kills in a run, each at a random moment of it.
        for _ in 0..rng.random_range(1..=3) {
            let mut child = train(&data, &out, out.exists());
            std::thread::sleep(Duration::from_millis(rng.random_range(0..700)));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            assert_consistent(&out);
        }
        finish(&data, &out);
        let got = weights(&out);
        assert!(got == expected, "round {round}: the resumed run's weights differ from the uninterrupted run's");
        let stale: Vec<_> = std::fs::read_dir(out.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(stale.len() <= 1, "temporary files pile up: {stale:?}");
    }
}
