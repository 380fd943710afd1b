//! `octconv tune`: which variant of the heavy kernels (register-blocked, wide or
//! workgroup-tiled) trains the seed net faster on this adapter, measured, and
//! kept per adapter and driver for every later run (`octconv info` shows it).

use std::process::ExitCode;
use std::rc::Rc;

use clap::Args;
use octconv::data::{Dataset, PIXELS};
use octconv::exec::{self, Device, ExecError, Runner};
use octconv::gpu::{tune_cache, Clock, Gpu};
use octconv::nn::{ParamSet, SeedNet};
use octconv::ops::Tiling;
use octconv::optim::AdamConfig;
use octconv::train::seconds_per_step;

use super::AdapterArgs;

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Rounds, each timing a few steps of every variant (the median is kept)
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[command(flatten)]
    adapter: AdapterArgs,
}

const STEPS: usize = 3;

pub fn run(args: TuneArgs) -> Result<ExitCode, String> {
    let choice = args.adapter.choice();
    let variants = Tiling::ALL;
    let mut runners = Vec::new();
    for tiling in variants {
        let mut gpu = pollster::block_on(Gpu::new(&choice)).map_err(|e| e.to_string())?;
        gpu.tiling = tiling;
        runners.push(pollster::block_on(step_runner(Rc::new(gpu))).map_err(|e| e.to_string())?);
    }
    let info = match &runners[0].0 {
        Device::Gpu(gpu) => gpu.info.clone(),
        Device::Cpu => unreachable!("tune opens a GPU"),
    };
    println!(
        "tuning on {} ({} rounds of {STEPS} training steps, batch 64, per variant)",
        Gpu::describe(&info),
        args.rounds
    );
    let mut samples = vec![Vec::new(); variants.len()];
    let mut clock = Clock::Wall;
    for _ in 0..args.rounds.max(1) {
        for (k, (_, runner, data)) in runners.iter_mut().enumerate() {
            let (seconds, used) = step_seconds(runner, *data)?;
            samples[k].push(seconds);
            clock = used;
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(exec::median).collect();
    for (tiling, seconds) in variants.iter().zip(&medians) {
        println!("  {:<10} {:>9.2} ms per training step ({})", tiling.name(), seconds * 1e3, clock.name());
    }
    let measured: Vec<(Tiling, f64)> = variants.into_iter().zip(medians).collect();
    let (best, _) = *measured.iter().min_by(|a, b| a.1.total_cmp(&b.1)).expect("three variants");
    let path = tune_cache::save(&info, best, &measured, clock.name())?;
    println!(
        "{} tiling from now on for this adapter and driver (kept in {}; OCTCONV_TILING still overrides)",
        best.name(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The seed net compiled on `gpu` with a dataset of a few batches on the device.
async fn step_runner(gpu: Rc<Gpu>) -> Result<(Device, Runner, exec::DeviceData), ExecError> {
    let device = Device::Gpu(gpu);
    let net = SeedNet::new();
    let model = net.graph(64, true, device.conv_lowering())?;
    let mut runner = exec::compile(&device, model, &ParamSet::init(&net.params(), 1), AdamConfig::default()).await?;
    let count = 64 * STEPS;
    let data = Dataset {
        images: (0..count * PIXELS).map(|i| (i * 37 % 256) as u8).collect(),
        labels: (0..count).map(|i| (i % 10) as u8).collect(),
    };
    let on_device = runner.upload_dataset(&data).await?;
    runner.set_order(on_device, &(0..count).collect::<Vec<_>>())?;
    Ok((device, runner, on_device))
}

/// Seconds per training step: GPU timestamps of whole steps where the device
/// has them, else the wall clock around `STEPS` steps and a wait.
fn step_seconds(runner: &mut Runner, data: exec::DeviceData) -> Result<(f64, Clock), String> {
    runner.select_batch(data, 0);
    runner.train_step(); // warm: the first use of each pipeline can be slow
    let program = runner.as_gpu().expect("tune runs on a GPU");
    if let Some(seconds) = program.step_gpu_seconds(STEPS) {
        return Ok((seconds, Clock::Gpu));
    }
    let seconds = pollster::block_on(seconds_per_step(runner.as_mut(), data, STEPS)).map_err(|e| e.to_string())?;
    Ok((seconds, Clock::Wall))
}
