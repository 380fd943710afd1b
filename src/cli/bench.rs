//! `octconv bench`: kernel times at the seed net's shapes, the whole training
//! step, inference throughput, and the octave-vs-plain sweep. Medians of
//! repeated runs after a warm-up; a table on stdout and JSON in a file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use octconv::cpu::AdamConfig;
use octconv::data::{Dataset, PIXELS};
use octconv::exec::{Device, DispatchTime, Runner};
use octconv::gpu::kernels::Tiling;
use octconv::graph::Graph;
use octconv::nn::{Branches, Linear, OctaveConv, ParamSet, SeedNet, TrainGraph};
use octconv::ops::Op;

use super::{open_device, AdapterArgs, DeviceKind};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Timed repetitions per measurement (the median is reported)
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Also time one octave conv layer (64→64 channels, 56×56, batch 8) against the plain conv
    #[arg(long)]
    octave_sweep: bool,
    /// Where to write the results as JSON
    #[arg(long, default_value = "runs/bench.json")]
    json: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceKind,
    #[command(flatten)]
    adapter: AdapterArgs,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Median seconds of `f`, after one warm-up call.
fn time(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..repeats.max(1))
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn compile(device: &Device, model: TrainGraph, specs_seed: u64) -> Result<Runner, String> {
    let params = ParamSet::init(&param_specs(&model), specs_seed);
    pollster::block_on(Runner::compile(device, model, &params, AdamConfig::default())).map_err(|e| e.to_string())
}

/// The parameter specs of a graph (fan-in from the shape, as PyTorch's default init).
fn param_specs(model: &TrainGraph) -> Vec<octconv::nn::ParamSpec> {
    let g = &model.graph;
    g.params()
        .into_iter()
        .map(|id| {
            let shape = g.shape(id).to_vec();
            let fan_in = if shape.len() > 1 { shape[1..].iter().product() } else { shape[0] };
            octconv::nn::ParamSpec { name: g.nodes[id].name.clone(), shape, fan_in }
        })
        .collect()
}

/// Waits for the device to finish what was submitted (a metrics read-back).
fn finish(runner: &Runner) {
    let _ = pollster::block_on(runner.metrics());
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub fn run(args: BenchArgs) -> Result<ExitCode, String> {
    let device = open_device(args.device, &args.adapter.choice())?;
    let tiling = match &device {
        Device::Gpu(gpu) => format!(", {} tiling", gpu.tiling.name()),
        Device::Cpu => String::new(),
    };
    println!("octconv bench on {}{tiling} ({} repeats, median)\n", device.describe(), args.repeats);
    let mut json = Vec::new();
    let net = SeedNet::new();

    // Kernels of one training step at batch 64 (GPU only: the CPU runs ops, not dispatches).
    let mut step_flops = 0u64;
    let mut train = compile(&device, net.graph(64, true).map_err(|e| e.to_string())?, 1)?;
    if let Runner::Gpu(program) = &mut train {
        let mib = program.value_bytes() as f64 / (1 << 20) as f64;
        println!("the training step's values take {mib:.1} MiB of GPU memory after buffer reuse\n");
        json.push(format!("\"value_mib\":{mib:.2}"));
        let times: Vec<DispatchTime> = program.profile(args.repeats);
        println!("{:<24} {:<34} {:>10} {:>10}", "kernel", "node (seed net, batch 64)", "ms", "GFLOP/s");
        let mut rows = Vec::new();
        for t in &times {
            let gflops = t.flops as f64 / t.seconds / 1e9;
            println!("{:<24} {:<34} {:>10.3} {:>10.2}", t.kernel, t.node, t.seconds * 1e3, gflops);
            rows.push(format!(
                "{{\"kernel\":\"{}\",\"node\":\"{}\",\"seconds\":{:.6},\"flops\":{}}}",
                t.kernel,
                json_escape(&t.node),
                t.seconds,
                t.flops
            ));
            step_flops += t.flops;
        }
        json.push(format!("\"kernels\":[{}]", rows.join(",")));
        let sum: f64 = times.iter().map(|t| t.seconds).sum();
        println!("{:<59} {:>10.3}\n", "sum of the dispatches, each submitted alone", sum * 1e3);
    }

    // A larger shape: the 512³ matrix product on the linear kernel in both
    // variants, the reference rate for this device.
    if let Device::Gpu(gpu) = &device {
        let mut rates = Vec::new();
        for tiling in [Tiling::Registers, Tiling::Workgroup] {
            let seconds = matmul_seconds(gpu, 512, args.repeats, tiling)?;
            let gflops = 2.0 * 512f64.powi(3) / seconds / 1e9;
            let used = if tiling == gpu.tiling { " (the variant used here)" } else { "" };
            println!(
                "matmul 512×512×512, {} tiling: {:.1} ms, {gflops:.2} GFLOP/s{used}",
                tiling.name(),
                seconds * 1e3
            );
            rates.push(format!("\"{}\":{{\"seconds\":{seconds:.6},\"gflops\":{gflops:.3}}}", tiling.name()));
        }
        println!();
        json.push(format!("\"matmul_512\":{{{}}}", rates.join(",")));
    }

    // The whole step as training runs it: the batch gathered from a dataset on
    // the device, forward, backward and Adam, in one submission.
    let data = synthetic_dataset(640);
    let on_device = pollster::block_on(train.upload_dataset(&data)).map_err(|e| e.to_string())?;
    train.set_order(on_device, &(0..data.len()).collect::<Vec<_>>());
    let step = time(args.repeats, || {
        train.select_batch(on_device, 0);
        train.train_step();
        finish(&train);
    });
    // Ten steps submitted back to back and waited for once, as an epoch runs.
    let pipelined = time(args.repeats, || {
        for k in 0..10 {
            train.select_batch(on_device, 64 * k);
            train.train_step();
        }
        finish(&train);
    }) / 10.0;
    if step_flops == 0 {
        // Forward 7.06 MFLOP per image (octconv flops); backward about twice that.
        step_flops = (3.0 * 7.06e6 * 64.0) as u64;
    }
    println!(
        "training step (batch 64): {:.1} ms, {:.0} samples/s, {:.2} GFLOP/s; back to back: {:.2} ms per step",
        step * 1e3,
        64.0 / step,
        step_flops as f64 / step / 1e9,
        pipelined * 1e3
    );
    // The host's part of a step, which bounds the step rate on a GPU fast enough to keep up.
    let mut recording = 0.0;
    if let Runner::Gpu(program) = &train {
        recording = program.recording_seconds(20 * args.repeats);
        println!(
            "  recording a step's {} dispatches on the host: {:.3} ms",
            program.dispatches_per_step(),
            recording * 1e3
        );
    }
    json.push(format!(
        "\"train_step\":{{\"batch\":64,\"seconds\":{step:.6},\"back_to_back_seconds\":{pipelined:.6},\"recording_seconds\":{recording:.6},\"flops\":{step_flops}}}"
    ));

    // Inference throughput.
    let mut inference = Vec::new();
    for batch in [1usize, 1000] {
        let mut runner = compile(&device, net.graph(batch, false).map_err(|e| e.to_string())?, 1)?;
        runner.write_batch(&vec![0.5; batch * 784], &vec![-1.0; batch]);
        let seconds = time(args.repeats, || {
            runner.forward();
            finish(&runner);
        });
        println!(
            "inference, batch {batch:>4}: {:.2} ms per batch, {:.0} images/s",
            seconds * 1e3,
            batch as f64 / seconds
        );
        inference.push(format!("{{\"batch\":{batch},\"seconds\":{seconds:.6}}}"));
    }
    json.push(format!("\"inference\":[{}]", inference.join(",")));

    if args.octave_sweep {
        json.push(format!("\"octave_sweep\":[{}]", octave_sweep(&device, args.repeats)?.join(",")));
    }

    let text = format!("{{\"device\":\"{}\",{}}}\n", json_escape(&device.describe()), json.join(","));
    if let Some(parent) = args.json.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: cannot be created: {e}", parent.display()))?;
    }
    std::fs::write(&args.json, text).map_err(|e| format!("{}: cannot be written: {e}", args.json.display()))?;
    println!("\nwrote {}", args.json.display());
    Ok(ExitCode::SUCCESS)
}

/// `count` digit-sized examples with varied pixels and labels, for timing.
fn synthetic_dataset(count: usize) -> Dataset {
    let images = (0..count * PIXELS).map(|i| (i * 37 % 256) as u8).collect();
    let labels = (0..count).map(|i| (i % 10) as u8).collect();
    Dataset { images, labels }
}

/// Median seconds of one n×n×n product on the matmul kernel (y = x·Wᵀ + b).
fn matmul_seconds(gpu: &octconv::gpu::Gpu, n: usize, repeats: usize, tiling: Tiling) -> Result<f64, String> {
    use octconv::gpu::kernels::launch_for;
    use octconv::tensor::Tensor;
    let err = |e: octconv::gpu::GpuError| e.to_string();
    let x = gpu.upload(&Tensor::uniform(&[n, n], -1.0, 1.0, 1)).map_err(err)?;
    let w = gpu.upload(&Tensor::uniform(&[n, n], -1.0, 1.0, 2)).map_err(err)?;
    let b = gpu.upload(&Tensor::zeros(&[n])).map_err(err)?;
    let y = gpu.storage_buffer(n * n, "y");
    let launch = launch_for(&Op::Linear, &[&[n, n], &[n, n], &[n]], &[n, n], tiling).expect("linear has a kernel");
    let pipeline = pollster::block_on(gpu.pipeline(launch.kernel)).map_err(err)?;
    let bind_group = gpu.bind(&pipeline, &launch, &[&x.buffer, &w.buffer, &b.buffer, &y]);
    Ok(time(repeats, || {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            octconv::gpu::Gpu::dispatch(&mut pass, &pipeline, &bind_group, &launch);
        }
        gpu.queue.submit([encoder.finish()]);
        let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    }))
}

/// A graph around one octave conv layer, so that its forward and backward run
/// as in training: inputs → layer → a linear head per branch → loss.
fn sweep_graph(alpha: f64) -> Result<TrainGraph, String> {
    let (batch, channels, side) = (8, 64, 56);
    let layer = OctaveConv::new("sweep", channels, channels, alpha, alpha, 3, 1, 1).map_err(|e| e.to_string())?;
    let mut g = Graph::new();
    let high = g.input("images", &[batch, layer.in_high, side, side]);
    let low = (layer.in_low > 0).then(|| g.input("low", &[batch, layer.in_low, side / 2, side / 2]));
    let labels = g.input("labels", &[batch]);
    let y = layer.apply(&mut g, Branches { high: Some(high), low }).map_err(|e| e.to_string())?;
    let mut logits = None;
    for (name, branch) in [("head_high", y.high), ("head_low", y.low)] {
        let Some(b) = branch else { continue };
        let features = g.shape(b)[1..].iter().product();
        let flat = g.apply(name, Op::Reshape { shape: vec![batch, features] }, &[b]).map_err(|e| e.to_string())?;
        let out = Linear::new(name, features, 10).apply(&mut g, flat).map_err(|e| e.to_string())?;
        logits = Some(match logits {
            Some(previous) => g.apply("logits", Op::Add, &[previous, out]).map_err(|e| e.to_string())?,
            None => out,
        });
    }
    let logits = logits.expect("the layer has an output");
    let loss = g.apply("loss", Op::CrossEntropy, &[logits, labels]).map_err(|e| e.to_string())?;
    let grads = g.backward(loss).map_err(|e| e.to_string())?;
    Ok(TrainGraph { graph: g, images: high, labels, logits, loss, grads, features: vec![] })
}

/// Forward + backward time of the octave layer for each alpha, against alpha = 0 (the plain conv).
fn octave_sweep(device: &Device, repeats: usize) -> Result<Vec<String>, String> {
    println!("\noctave conv 64→64, 56×56, batch 8, forward + backward (the layer's dispatches only)");
    println!("{:>6} {:>12} {:>12} {:>14} {:>14}", "alpha", "ms", "× plain", "theory × plain", "GFLOP/s");
    const ALPHAS: [f64; 5] = [0.0, 0.125, 0.25, 0.5, 0.75];
    let mut runners = Vec::new();
    for alpha in ALPHAS {
        runners.push(compile(device, sweep_graph(alpha)?, 3)?);
    }
    // Rounds over every alpha, so each ratio compares times taken minutes
    // apart at most, not a whole sweep apart (this machine's speed drifts).
    let mut seconds = vec![Vec::new(); ALPHAS.len()];
    let mut ratios = vec![Vec::new(); ALPHAS.len()];
    let mut flops = vec![0u64; ALPHAS.len()];
    for _ in 0..repeats.max(1) {
        let mut round = Vec::new();
        for (k, runner) in runners.iter_mut().enumerate() {
            let Runner::Gpu(program) = runner else {
                return Err("the octave sweep times GPU dispatches; run it with a GPU adapter".into());
            };
            let layer: Vec<DispatchTime> =
                program.profile(1).into_iter().filter(|t| t.node.starts_with("sweep.")).collect();
            round.push(layer.iter().map(|t| t.seconds).sum::<f64>());
            flops[k] = layer.iter().map(|t| t.flops).sum();
        }
        for k in 0..ALPHAS.len() {
            seconds[k].push(round[k]);
            ratios[k].push(round[k] / round[0]);
        }
    }
    let mut rows = Vec::new();
    for (k, alpha) in ALPHAS.into_iter().enumerate() {
        let (time, ratio) = (median(seconds[k].clone()), median(ratios[k].clone()));
        let theory = 1.0 - 0.75 * alpha * (2.0 - alpha);
        let gflops = flops[k] as f64 / time / 1e9;
        println!("{alpha:>6} {:>12.1} {ratio:>12.3} {theory:>14.3} {gflops:>14.2}", time * 1e3);
        rows.push(format!("{{\"alpha\":{alpha},\"seconds\":{time:.6},\"ratio\":{ratio:.4},\"theory\":{theory:.4}}}"));
    }
    println!("(median of {} rounds; \"× plain\" is the median of each round's ratio)", repeats.max(1));
    Ok(rows)
}
