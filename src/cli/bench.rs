//! `octconv bench`: kernel times at the seed net's shapes, the whole training
//! step, inference throughput, and the octave-vs-plain sweep. Medians of
//! repeated runs after a warm-up; a table on stdout and JSON in a file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use octconv::data::{load_split, Dataset, DatasetKind, Split, PIXELS};
use octconv::exec::{median, Device, DispatchTime, Program, Runner};
use octconv::gpu::{Clock, Gpu};
use octconv::graph::{Graph, Node, Source};
use octconv::nn::{
    checked_alpha, Branches, ConvLowering, Linear, OctaveConv, ParamSet, ParamSpec, SeedNet, TrainGraph, SEED_ALPHA,
};
use octconv::ops::{self, Op, Tiling};
use serde_json::{json, Value};

use super::{compile, open_device, AdapterArgs, DeviceKind};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Timed repetitions per measurement (the median is reported)
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// The seed net's octave share (0: the plain CNN)
    #[arg(long, default_value_t = SEED_ALPHA, allow_negative_numbers = true)]
    alpha: f64,
    /// Also time one octave conv layer (64→64 channels, 56×56, batch 8) against the plain conv
    #[arg(long)]
    octave_sweep: bool,
    /// Where to write the results as JSON
    #[arg(long, default_value = "runs/bench.json")]
    json: PathBuf,
    /// MNIST folder: the step is timed on its first 640 training images and
    /// inference on its first test images (fetched there when missing)
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Time on generated digits instead of MNIST (no data needed; kernel
    /// times barely depend on the pixels, max pooling's branches aside)
    #[arg(long)]
    synthetic: bool,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceKind,
    #[command(flatten)]
    adapter: AdapterArgs,
}

/// The examples timed: the first `train` training and `test` test images of
/// MNIST, or generated digits with `--synthetic`.
struct Inputs {
    train: Dataset,
    test: Dataset,
    source: String,
}

impl Inputs {
    fn load(args: &BenchArgs) -> Result<Inputs, String> {
        if args.synthetic {
            let source = "generated digits (--synthetic)".to_string();
            return Ok(Inputs { train: synthetic_dataset(640), test: synthetic_dataset(1000), source });
        }
        let load = |split| load_split(DatasetKind::Digits, &args.data, split, true).map_err(|e| e.to_string());
        let (train, test) = (load(Split::Train)?, load(Split::Test)?);
        let source = format!("real MNIST batches from {}", args.data.display());
        Ok(Inputs { train: train.first(640.min(train.len())), test: test.first(1000.min(test.len())), source })
    }
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

/// A model compiled with seeded PyTorch-style initial weights.
fn compiled(device: &Device, model: TrainGraph, seed: u64) -> Result<Runner, String> {
    let params = ParamSet::init(&param_specs(&model), seed);
    compile(device, model, &params)
}

/// The parameter specs of a graph (fan-in from the shape, as PyTorch's default init).
fn param_specs(model: &TrainGraph) -> Vec<ParamSpec> {
    let g = &model.graph;
    g.params()
        .into_iter()
        .map(|id| {
            let shape = g.shape(id).to_vec();
            let fan_in = if shape.len() > 1 { shape[1..].iter().product() } else { shape[0] };
            ParamSpec { name: g.nodes[id].name.clone(), shape, fan_in }
        })
        .collect()
}

/// Waits for the device to finish what was submitted (a metrics read-back).
fn finish(runner: &dyn Program) {
    let _ = pollster::block_on(runner.metrics());
}

pub fn run(args: BenchArgs) -> Result<ExitCode, String> {
    let inputs = Inputs::load(&args)?;
    let device = open_device(args.device, &args.adapter.choice())?;
    let tiling = match &device {
        Device::Gpu(gpu) => format!(", {} tiling", gpu.tiling.name()),
        Device::Cpu => String::new(),
    };
    println!(
        "octconv bench of the net with alpha {} on {}{tiling} ({} repeats, median; {})\n",
        args.alpha,
        device.describe(),
        args.repeats,
        inputs.source
    );
    let net = SeedNet::with_alpha(checked_alpha(args.alpha).map_err(|e| format!("--{e}"))?);
    let mut report = serde_json::Map::new();
    report.insert("device".into(), json!(device.describe()));
    report.insert("alpha".into(), json!(args.alpha));
    report.insert("inputs".into(), json!(inputs.source));

    let mut train = compiled(&device, net.graph(64, true, device.conv_lowering()).map_err(|e| e.to_string())?, 1)?;
    if let Some(program) = train.as_gpu() {
        let mib = program.value_bytes() as f64 / (1 << 20) as f64;
        println!("the training step's values take {mib:.1} MiB of GPU memory after buffer reuse\n");
        report.insert("value_mib".into(), json!((mib * 100.0).round() / 100.0));
        let (times, clock) = program.profile(args.repeats);
        let (kernels, _) = kernel_table("dispatch", "seed net, batch 64", &times, clock, args.repeats, &mut report);
        report.insert("kernels".into(), kernels);
    }
    if let Some(program) = train.as_cpu() {
        let times = program.profile(args.repeats);
        let (ops, _) = kernel_table("op", "seed net, batch 64", &times, Clock::Wall, args.repeats, &mut report);
        report.insert("ops".into(), ops);
    }
    if let Device::Gpu(gpu) = &device {
        report.insert("matmul_512".into(), matmul_rates(gpu, args.repeats)?);
    }
    let step_flops = model_flops(&net.graph(64, true, ConvLowering::Direct).map_err(|e| e.to_string())?);
    let step = training_step(train.as_mut(), &inputs.train, args.repeats, step_flops)?;
    if let Device::Cpu = device {
        // The machine's GEMM rate, which the whole step is measured against (target: at least half of it).
        let peak = sgemm_peak(args.repeats);
        let step_rate = step_flops as f64 / step["seconds"].as_f64().unwrap_or(f64::NAN) / 1e9;
        println!(
            "  sgemm {SGEMM_PEAK_N}³ on every core (matrixmultiply): {peak:.1} GFLOP/s; the step reaches {:.0} % of it (target ≥ 50 %)",
            100.0 * step_rate / peak
        );
        report.insert("sgemm_peak_gflops".into(), json!(peak));
    }
    report.insert("train_step".into(), step);
    report.insert("inference".into(), inference(&device, &net, &inputs.test, args.repeats)?);
    if args.octave_sweep {
        report.insert("octave_sweep".into(), octave_sweep(&device, args.repeats)?);
    }

    if let Some(parent) = args.json.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            format!("{}: cannot be created: {e}; choose a --json path you can write to", parent.display())
        })?;
    }
    let text = serde_json::to_string_pretty(&Value::Object(report)).expect("plain numbers and strings") + "\n";
    std::fs::write(&args.json, text).map_err(|e| {
        format!("{}: cannot be written: {e}; choose a --json path you can write to", args.json.display())
    })?;
    println!("\nwrote {}", args.json.display());
    Ok(ExitCode::SUCCESS)
}

/// Every dispatch (GPU) or op (CPU) of one training step at batch 64 (or
/// of `what` else), each timed on its own, printed. Returns the rows and the FLOPs.
fn kernel_table(
    unit: &str,
    what: &str,
    times: &[DispatchTime],
    clock: Clock,
    repeats: usize,
    report: &mut serde_json::Map<String, Value>,
) -> (Value, u64) {
    report.insert("kernel_clock".into(), json!(clock.name()));
    println!("each {unit} timed on its own ({}, median of {repeats})", clock.name());
    // On the CPU device, also how many cores each op kept busy on average (process CPU time over wall
    // time), and its time inside back-to-back passes, where its inputs are not already in the cache.
    let cpu = times.iter().any(|t| t.cores.is_some());
    let cpu_header = if cpu { format!("{:>8} {:>10}", "cores", "in step") } else { String::new() };
    println!("{:<24} {:<34} {:>10} {:>10}{cpu_header}", unit, format!("node ({what})"), "ms", "GFLOP/s");
    let mut rows = Vec::new();
    for t in times {
        let gflops = t.flops as f64 / t.seconds / 1e9;
        let cores = t.cores.map(|c| format!("{c:>8.2}")).unwrap_or_default();
        let in_step = t.in_step.map(|s| format!(" {:>10.3}", s * 1e3)).unwrap_or_default();
        println!("{:<24} {:<34} {:>10.3} {:>10.2}{cores}{in_step}", t.kernel, t.node, t.seconds * 1e3, gflops);
        let mut row = json!({"kernel": t.kernel, "node": t.node, "seconds": t.seconds, "flops": t.flops});
        if let Some(cores) = t.cores {
            row["cores"] = json!(cores);
        }
        if let Some(in_step) = t.in_step {
            row["in_step_seconds"] = json!(in_step);
        }
        rows.push(row);
    }
    let sum: f64 = times.iter().map(|t| t.seconds).sum();
    let in_step: f64 = times.iter().filter_map(|t| t.in_step).sum();
    let (label, in_step) = match cpu {
        true => ("sum, each timed alone; in the step, Adam apart", format!(" {:>29.3}", in_step * 1e3)),
        false => ("sum, each timed alone", String::new()),
    };
    println!("{label:<59} {:>10.3}{in_step}\n", sum * 1e3);
    (Value::Array(rows), times.iter().map(|t| t.flops).sum())
}

/// The 512³ matrix product on the linear kernel in both variants: the reference rate for this device.
fn matmul_rates(gpu: &Gpu, repeats: usize) -> Result<Value, String> {
    let mut rates = serde_json::Map::new();
    for tiling in Tiling::ALL {
        let seconds = matmul_seconds(gpu, 512, repeats, tiling)?;
        let gflops = 2.0 * 512f64.powi(3) / seconds / 1e9;
        let used = if tiling == gpu.tiling { " (the variant used here)" } else { "" };
        println!("matmul 512×512×512, {} tiling: {:.1} ms, {gflops:.2} GFLOP/s{used}", tiling.name(), seconds * 1e3);
        rates.insert(tiling.name().into(), json!({"seconds": seconds, "gflops": gflops}));
    }
    println!();
    Ok(Value::Object(rates))
}

/// The side of the square product `sgemm_peak` times.
const SGEMM_PEAK_N: usize = 2048;

/// GFLOP/s of one large square product on the CPU device's GEMM over all its
/// threads (the median of `repeats`): the most this machine's cores do.
fn sgemm_peak(repeats: usize) -> f64 {
    use octconv::tensor::Tensor;
    let n = SGEMM_PEAK_N;
    let (a, b) = (Tensor::uniform(&[n, n], -1.0, 1.0, 1), Tensor::uniform(&[n, n], -1.0, 1.0, 2));
    let mut c = vec![0.0; n * n];
    let seconds = time(repeats.max(3), || {
        octconv::ops::fast_cpu::gemm_parallel(n, n, n, &a.data, (n, 1), &b.data, (n, 1), &mut c, (n, 1), 0.0)
    });
    2.0 * (n as f64).powi(3) / seconds / 1e9
}

/// The whole step as training runs it: the batch gathered from a dataset on
/// the device, forward, backward and Adam, in one submission; then ten steps
/// back to back with one wait, as an epoch runs. Rates are of `flops`.
fn training_step(train: &mut dyn Program, data: &Dataset, repeats: usize, flops: u64) -> Result<Value, String> {
    let on_device = pollster::block_on(train.upload_dataset(data)).map_err(|e| e.to_string())?;
    train.set_order(on_device, &(0..data.len()).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
    let step = time(repeats, || {
        train.select_batch(on_device, 0);
        train.train_step();
        finish(train);
    });
    // With the cores the back-to-back steps kept busy: on the CPU device, how much of the machine a step leaves idle.
    let (pipelined, cores) = octconv::exec::with_cores_busy(|| {
        time(repeats, || {
            train.train_steps(on_device, 0, 10);
            finish(train);
        }) / 10.0
    });
    println!(
        "training step (batch 64): {:.1} ms, {:.0} samples/s, {:.2} GFLOP/s; back to back: {:.2} ms per step",
        step * 1e3,
        64.0 / step,
        flops as f64 / step / 1e9,
        pipelined * 1e3
    );
    if train.as_cpu().is_some() {
        let threads = rayon::current_num_threads();
        println!(
            "  cores busy on average over the back-to-back steps: {cores:.2} of {threads} ({:.0} % of the machine idle)",
            100.0 * (1.0 - cores / threads as f64).max(0.0)
        );
    }
    // The host's part of a step, which bounds the step rate on a GPU fast enough to keep up,
    // and the device's part, from timestamps where the adapter has them.
    let (mut recording, mut gpu_seconds) = (0.0, None);
    if let Some(program) = train.as_gpu() {
        recording = program.recording_seconds(20 * repeats);
        let count = program.dispatches_per_step();
        println!("  recording a step's {count} dispatches on the host: {:.3} ms", recording * 1e3);
        gpu_seconds = program.step_gpu_seconds(repeats);
        if let Some(s) = gpu_seconds {
            println!(
                "  the step on the device (GPU timestamps): {:.2} ms, {:.2} GFLOP/s",
                s * 1e3,
                flops as f64 / s / 1e9
            );
        }
    }
    Ok(json!({
        "batch": 64,
        "seconds": step,
        "back_to_back_seconds": pipelined,
        "back_to_back_cores": cores,
        "recording_seconds": recording,
        "gpu_seconds": gpu_seconds,
        "flops": flops,
    }))
}

/// The FLOPs of one run of `model`'s ops, as each op counts them. Rates are
/// given for the graph with direct convolutions whatever lowering runs, so
/// they compare across devices (Winograd does fewer multiply-adds for the same work).
fn model_flops(model: &TrainGraph) -> u64 {
    let g = &model.graph;
    let op_flops = |node: &Node| match &node.source {
        Source::Op(op) => {
            let inputs: Vec<&[usize]> = node.inputs.iter().map(|&i| g.shape(i)).collect();
            op.flops(&inputs, &node.shape)
        }
        _ => 0,
    };
    g.nodes.iter().map(op_flops).sum()
}

/// Inference throughput at batch 1 and 1000, on the first test images.
fn inference(device: &Device, net: &SeedNet, test: &Dataset, repeats: usize) -> Result<Value, String> {
    let mut rows = Vec::new();
    for batch in [1usize, 1000] {
        let mut runner =
            compiled(device, net.graph(batch, false, device.conv_lowering()).map_err(|e| e.to_string())?, 1)?;
        let order: Vec<usize> = (0..test.len()).collect();
        let (images, labels) = test.batch_at(&order, 0, batch);
        runner.write_batch(&images, &labels).map_err(|e| e.to_string())?;
        let seconds = time(repeats, || {
            runner.forward();
            finish(runner.as_ref());
        });
        println!(
            "inference, batch {batch:>4}: {:.2} ms per batch, {:.0} images/s",
            seconds * 1e3,
            batch as f64 / seconds
        );
        let mut row = json!({"batch": batch, "seconds": seconds});
        // Where the large batch's time goes on a GPU, dispatch by dispatch.
        if let Some(program) = runner.as_gpu().filter(|_| batch > 1) {
            let (times, clock) = program.profile(repeats);
            let mut table = serde_json::Map::new();
            println!();
            let (kernels, _) = kernel_table("dispatch", "inference, batch 1000", &times, clock, repeats, &mut table);
            row["kernels"] = kernels;
        }
        rows.push(row);
    }
    Ok(Value::Array(rows))
}

/// `count` digit-sized examples with varied pixels and labels, for timing.
fn synthetic_dataset(count: usize) -> Dataset {
    let images = (0..count * PIXELS).map(|i| (i * 37 % 256) as u8).collect();
    let labels = (0..count).map(|i| (i % 10) as u8).collect();
    Dataset { images, labels }
}

/// Median seconds of one n×n×n product on the matmul kernel (y = x·Wᵀ + b).
fn matmul_seconds(gpu: &Gpu, n: usize, repeats: usize, tiling: Tiling) -> Result<f64, String> {
    use octconv::tensor::Tensor;
    let err = |e: octconv::gpu::GpuError| e.to_string();
    let x = gpu.upload(&Tensor::uniform(&[n, n], -1.0, 1.0, 1)).map_err(err)?;
    let w = gpu.upload(&Tensor::uniform(&[n, n], -1.0, 1.0, 2)).map_err(err)?;
    let b = gpu.upload(&Tensor::zeros(&[n])).map_err(err)?;
    let y = gpu.storage_buffer(n * n, "y");
    let linear = Op::from(ops::Linear);
    let launch = linear.launch(&[&[n, n], &[n, n], &[n]], &[n, n], tiling).expect("linear has a kernel");
    let (seconds, _) =
        pollster::block_on(gpu.time_dispatch(&launch, &[&x.buffer, &w.buffer, &b.buffer, &y], &[], repeats))
            .map_err(err)?;
    Ok(seconds)
}

/// A graph around one octave conv layer, so that its forward and backward run
/// as in training: inputs → layer → a linear head per branch → loss.
fn sweep_graph(alpha: f64, lowering: ConvLowering) -> Result<TrainGraph, String> {
    let (batch, channels, side) = (8, 64, 56);
    let layer = OctaveConv::new("sweep", channels, channels, alpha, alpha, 3, 1, 1).map_err(|e| e.to_string())?;
    let mut g = Graph::new();
    let high = g.input("images", &[batch, layer.in_high, side, side]);
    let low = (layer.in_low > 0).then(|| g.input("low", &[batch, layer.in_low, side / 2, side / 2]));
    let labels = g.input("labels", &[batch]);
    let y = layer.apply(&mut g, Branches { high: Some(high), low }, lowering).map_err(|e| e.to_string())?;
    let mut logits = None;
    for (name, branch) in [("head_high", y.high), ("head_low", y.low)] {
        let Some(b) = branch else { continue };
        let features = g.shape(b)[1..].iter().product();
        let flat = g.apply(name, ops::Reshape { shape: vec![batch, features] }, &[b]).map_err(|e| e.to_string())?;
        let out = Linear::new(name, features, 10).apply(&mut g, flat).map_err(|e| e.to_string())?;
        logits = Some(match logits {
            Some(previous) => g.apply("logits", ops::Add, &[previous, out]).map_err(|e| e.to_string())?,
            None => out,
        });
    }
    let logits = logits.expect("the layer has an output");
    let loss = g.apply("loss", ops::CrossEntropy, &[logits, labels]).map_err(|e| e.to_string())?;
    let grads = g.backward(loss).map_err(|e| e.to_string())?;
    Ok(TrainGraph { graph: g, images: high, labels, logits, loss, grads, features: vec![] })
}

/// Forward + backward time of the octave layer for each alpha, against alpha = 0 (the plain conv).
fn octave_sweep(device: &Device, repeats: usize) -> Result<Value, String> {
    println!("\noctave conv 64→64, 56×56, batch 8, forward + backward (the layer's dispatches only)");
    println!("{:>6} {:>12} {:>12} {:>14} {:>14}", "alpha", "ms", "× plain", "theory × plain", "GFLOP/s");
    const ALPHAS: [f64; 5] = [0.0, 0.125, 0.25, 0.5, 0.75];
    let mut runners = Vec::new();
    for alpha in ALPHAS {
        runners.push(compiled(device, sweep_graph(alpha, device.conv_lowering())?, 3)?);
    }
    // Rounds over every alpha, so each ratio compares times taken minutes
    // apart at most, not a whole sweep apart (this machine's speed drifts).
    let mut seconds = vec![Vec::new(); ALPHAS.len()];
    let mut ratios = vec![Vec::new(); ALPHAS.len()];
    let mut flops = vec![0u64; ALPHAS.len()];
    for _ in 0..repeats.max(1) {
        let mut round = Vec::new();
        for (k, runner) in runners.iter_mut().enumerate() {
            let Some(program) = runner.as_gpu() else {
                return Err("the octave sweep times GPU dispatches; run it with a GPU adapter".into());
            };
            let layer: Vec<DispatchTime> =
                program.profile(1).0.into_iter().filter(|t| t.node.starts_with("sweep.")).collect();
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
        rows.push(json!({"alpha": alpha, "seconds": time, "ratio": ratio, "theory": theory}));
    }
    println!("(median of {} rounds; \"× plain\" is the median of each round's ratio)", repeats.max(1));
    Ok(Value::Array(rows))
}
