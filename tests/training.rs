//! Training on small generated data, and checkpoints that round-trip.

mod common;

use std::rc::Rc;

use octconv::checkpoint;
use octconv::exec::Device;
use octconv::nn::{ParamSet, SeedNet};
use octconv::optim::AdamConfig;
use octconv::train::{evaluate, train_epoch};

/// Trains the seed net for four epochs on 320 bar images and checks that it learns.
fn learns_on(device: Device) {
    let data = common::bars(320, 11);
    let held_out = common::bars(100, 12);
    let net = SeedNet::new();
    let params = ParamSet::init(&net.params(), 5);
    let model = net.graph(32, true, device.conv_lowering()).unwrap();
    let mut runner =
        pollster::block_on(octconv::exec::compile(&device, model, &params, AdamConfig::default())).unwrap();
    let data = pollster::block_on(runner.upload_dataset(&data)).unwrap();
    let held_out = pollster::block_on(runner.upload_dataset(&held_out)).unwrap();
    let before = pollster::block_on(evaluate(runner.as_mut(), held_out)).unwrap();
    let mut first_loss = None;
    for epoch in 0..4 {
        let m = pollster::block_on(train_epoch(runner.as_mut(), data, 3, epoch, 1, |_, m| {
            first_loss.get_or_insert(m.loss());
        }))
        .unwrap();
        println!("{}: epoch {epoch}: loss {:.4} accuracy {:.3}", device.describe(), m.loss(), m.accuracy());
    }
    let after = pollster::block_on(evaluate(runner.as_mut(), held_out)).unwrap();
    println!(
        "held out: loss {:.4} → {:.4}, accuracy {:.3} → {:.3}",
        before.loss(),
        after.loss(),
        before.accuracy(),
        after.accuracy()
    );
    assert_eq!(after.samples, 100.0, "the padded last batch counts only real samples");
    assert!(after.loss() < 0.3 * first_loss.unwrap(), "loss did not fall: {} → {}", first_loss.unwrap(), after.loss());
    assert!(after.accuracy() > 0.8, "accuracy {} is not well above chance (0.1)", after.accuracy());
}

#[test]
fn the_seed_net_learns_on_the_gpu() {
    let Some(gpu) = common::gpu() else { return };
    learns_on(Device::Gpu(Rc::new(gpu)));
}

#[test]
fn the_seed_net_learns_on_the_cpu() {
    learns_on(Device::Cpu);
}

#[test]
fn a_checkpoint_round_trips_with_its_optimizer_state_on_the_cpu() {
    round_trip(Device::Cpu, "roundtrip-cpu");
}

/// On the GPU the parameters, gradients and Adam moments sit at offsets in shared buffers.
#[test]
fn a_checkpoint_round_trips_with_its_optimizer_state_on_the_gpu() {
    let Some(gpu) = common::gpu() else { return };
    round_trip(Device::Gpu(Rc::new(gpu)), "roundtrip-gpu");
}

/// Trains an epoch, saves parameters and Adam state, restores both into a
/// fresh runner, and checks the two continue identically.
fn round_trip(device: Device, name: &str) {
    let dir = common::temp_dir(name);
    let net = SeedNet::new();
    let data = common::bars(16, 4);
    let mut runner = pollster::block_on(octconv::exec::compile(
        &device,
        net.graph(8, true, device.conv_lowering()).unwrap(),
        &ParamSet::init(&net.params(), 9),
        AdamConfig::default(),
    ))
    .unwrap();
    let on_device = pollster::block_on(runner.upload_dataset(&data)).unwrap();
    pollster::block_on(train_epoch(runner.as_mut(), on_device, 1, 0, 100, |_, _| {})).unwrap();
    let params = pollster::block_on(runner.params()).unwrap();
    let state = pollster::block_on(runner.optimizer_state()).unwrap();
    let metadata = std::collections::HashMap::from([("epoch".to_string(), "1".to_string())]);

    let path = dir.join("model.safetensors");
    checkpoint::save(&path, &params, &metadata).unwrap();
    let adam_path = checkpoint::optimizer_path(&path);
    checkpoint::save_optimizer(&adam_path, &state).unwrap();
    assert!(!dir.join("model.safetensors.tmp").exists(), "the temporary file was renamed away");

    let loaded = checkpoint::load(&path).unwrap();
    assert_eq!(loaded.metadata.get("epoch").map(String::as_str), Some("1"));
    assert_eq!(loaded.params_for(&net.params(), "model").unwrap(), params);
    assert_eq!(checkpoint::load_optimizer(&adam_path, &net.params()).unwrap(), state);

    // A runner restored from the files continues exactly like the original.
    let mut restored = pollster::block_on(octconv::exec::compile(
        &device,
        net.graph(8, true, device.conv_lowering()).unwrap(),
        &params,
        AdamConfig::default(),
    ))
    .unwrap();
    restored.load_optimizer_state(&state).unwrap();
    for r in [&mut runner, &mut restored] {
        let on_device = pollster::block_on(r.upload_dataset(&data)).unwrap();
        pollster::block_on(train_epoch(r.as_mut(), on_device, 1, 1, 100, |_, _| {})).unwrap();
    }
    assert_eq!(pollster::block_on(runner.params()).unwrap(), pollster::block_on(restored.params()).unwrap());
}

/// Steps recorded into one submission (`train_steps`: 16 a submission on the
/// GPU) end exactly where one step per submission does: across a submission
/// boundary (20 steps: 16 + 4), in a shuffled order, with a padded last batch.
#[test]
fn steps_recorded_together_match_steps_one_at_a_time_on_the_gpu() {
    let Some(gpu) = common::gpu() else { return };
    let device = Device::Gpu(Rc::new(gpu));
    let (batch, steps) = (8, 20);
    let data = common::bars(batch * steps - 3, 21);
    let order: Vec<usize> = (0..data.len()).map(|i| (i * 37) % data.len()).collect();
    let net = SeedNet::new();
    let params = ParamSet::init(&net.params(), 2);
    let train = |together: bool| {
        let model = net.graph(batch, true, device.conv_lowering()).unwrap();
        let mut runner =
            pollster::block_on(octconv::exec::compile(&device, model, &params, AdamConfig::default())).unwrap();
        let on_device = pollster::block_on(runner.upload_dataset(&data)).unwrap();
        runner.set_order(on_device, &order).unwrap();
        if together {
            runner.train_steps(on_device, 0, steps);
        } else {
            for k in 0..steps {
                runner.select_batch(on_device, k * batch);
                runner.train_step();
            }
        }
        let metrics = pollster::block_on(runner.metrics()).unwrap();
        let state = pollster::block_on(runner.optimizer_state()).unwrap();
        (metrics, pollster::block_on(runner.params()).unwrap(), state)
    };
    let (together, one_at_a_time) = (train(true), train(false));
    assert_eq!(together.0.samples, data.len() as f64, "every example once, the padding not counted");
    assert_eq!(together.0, one_at_a_time.0, "metrics");
    assert_eq!(together.2.step, steps as u64);
    assert!(together.1 == one_at_a_time.1, "parameters differ");
    assert!(together.2 == one_at_a_time.2, "Adam states differ");
    assert_ne!(together.1, params, "training changed the parameters");
}
