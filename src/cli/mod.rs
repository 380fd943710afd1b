//! Subcommands of `octconv`. Each returns Err(one sentence) on bad input.

mod adapters;
mod bench;
mod eval;
mod flops;
mod lab;
mod plot;
mod predict;
mod progress;
mod serve;
mod study;
mod train;
mod tune;

use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use octconv::data::{load_split, Dataset, DatasetKind, Split};
use octconv::exec::{self, Device, Runner};
use octconv::gpu::{AdapterChoice, Gpu, GpuError};
use octconv::nn::{ParamSet, TrainGraph};
use octconv::optim::AdamConfig;
use octconv::train::Recipe;

#[derive(Parser)]
#[command(name = "octconv", version, about = "Octave-convolution networks on any GPU through WebGPU")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the seed Octave MNIST network (defaults: the seed recipe).
    Train(train::TrainArgs),
    /// Test accuracy and confusion matrix of a checkpoint.
    Eval(eval::EvalArgs),
    /// Recognise digits in image files with a checkpoint.
    Predict(predict::PredictArgs),
    /// Serve the web page on localhost (build it first with web/build.sh).
    Serve(serve::ServeArgs),
    /// The octave trade-off: accuracy against measured cost for every alpha, over seeds.
    Study(study::StudyArgs),
    /// Time every kernel, the training step and inference (and the octave sweep).
    Bench(bench::BenchArgs),
    /// The seed network's cost per layer and octave path (MACs, parameters).
    Flops(flops::FlopsArgs),
    /// Download (and check) the data set into --data, if it is not there yet.
    Fetch(RunArgs),
    /// The shader lab: check an edited kernel against its twin and gradient rule, and time it.
    Lab(lab::LabArgs),
    /// Measure which kernel variant trains faster on this adapter and keep it.
    Tune(tune::TuneArgs),
    /// List the GPU adapters and the limits that matter to octconv.
    Info(AdapterArgs),
    /// Run every kernel on the GPU against its CPU twin and print the errors.
    Check(AdapterArgs),
}

pub fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Flops(args) => flops::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Study(args) => study::run(args),
        Command::Fetch(args) => fetch(&args),
        Command::Lab(args) => lab::run(args),
        Command::Tune(args) => tune::run(args),
        Command::Info(args) => adapters::info(&args.choice()),
        Command::Check(args) => adapters::check(&args.choice()),
    }
}

#[derive(Args, Clone, Debug)]
pub struct AdapterArgs {
    /// Backends to consider: vulkan, metal, dx12, gl (comma list) [env: OCTCONV_BACKEND]
    #[arg(long)]
    backend: Option<String>,
    /// Use the adapter whose name contains this text, e.g. llvmpipe [env: OCTCONV_ADAPTER]
    #[arg(long)]
    adapter: Option<String>,
}

impl AdapterArgs {
    fn choice(&self) -> AdapterChoice {
        let env = AdapterChoice::from_env();
        AdapterChoice { backends: self.backend.clone().or(env.backends), name: self.adapter.clone().or(env.name) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// A hardware GPU if one is found, else the CPU device (with a notice): a
    /// software adapter (llvmpipe, SwiftShader) is slower than the CPU device
    Auto,
    Gpu,
    Cpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    /// MNIST handwritten digits.
    Mnist,
    /// Fashion-MNIST (Debian: dataset-fashion-mnist).
    Fashion,
}

/// The training recipe's settings, shared by train and study.
#[derive(Args, Clone, Debug)]
pub struct RecipeArgs {
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Adam's learning rate
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f32,
    /// Train on the first N training images only
    #[arg(long)]
    limit: Option<usize>,
}

impl RecipeArgs {
    /// The recipe with `seed`, or why these settings cannot run.
    fn recipe(&self, seed: u64) -> Result<Recipe, String> {
        if self.batch == 0 || self.epochs == 0 {
            return Err("--batch and --epochs must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("--lr must be a positive number, got {}", self.lr));
        }
        if self.limit == Some(0) {
            return Err("--limit must be at least 1".into());
        }
        Ok(Recipe { epochs: self.epochs, batch: self.batch, lr: self.lr, seed })
    }

    /// The training images to use: the first --limit of `train`, or all.
    fn limited(&self, train: Dataset) -> Result<Dataset, String> {
        match self.limit {
            Some(n) if n > train.len() => Err(format!(
                "--limit {n} is more than the {} training images; use at most {}",
                train.len(),
                train.len()
            )),
            Some(n) => Ok(train.first(n)),
            None => Ok(train),
        }
    }
}

/// A batch no larger than the data: a batch of 100000 on 500 images would
/// allocate for 100000. Says so when it shrinks one.
pub fn capped_batch(batch: usize, examples: usize, what: &str) -> usize {
    if batch > examples && examples > 0 {
        eprintln!("notice: --batch {batch} is more than the {examples} {what}; using batches of {examples}");
        examples
    } else {
        batch
    }
}

/// Where the data lives and where the model runs; shared by train and eval.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// Folder with the four IDX files (fetched there when missing)
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetArg,
    /// Never download: fail when the data folder lacks the files
    #[arg(long)]
    offline: bool,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceKind,
    #[command(flatten)]
    adapter: AdapterArgs,
}

impl RunArgs {
    fn dataset_kind(&self) -> DatasetKind {
        match self.dataset {
            DatasetArg::Mnist => DatasetKind::Digits,
            DatasetArg::Fashion => DatasetKind::Fashion,
        }
    }

    /// The data folder: Fashion-MNIST defaults to data/fashion-mnist.
    fn data_dir(&self) -> PathBuf {
        if self.dataset == DatasetArg::Fashion && self.data.as_path() == std::path::Path::new("data/mnist") {
            PathBuf::from("data/fashion-mnist")
        } else {
            self.data.clone()
        }
    }

    /// Reads one split, fetching the files unless --offline.
    fn load(&self, split: Split) -> Result<Dataset, String> {
        load_split(self.dataset_kind(), &self.data_dir(), split, !self.offline).map_err(|e| e.to_string())
    }

    fn device(&self) -> Result<Device, String> {
        open_device(self.device, &self.adapter.choice())
    }
}

/// `octconv fetch`: both splits, downloaded and checked when missing.
fn fetch(args: &RunArgs) -> Result<ExitCode, String> {
    for split in [Split::Train, Split::Test] {
        let data = args.load(split)?;
        println!("{} {split:?}: {} images in {}", args.dataset_kind().label(), data.len(), args.data_dir().display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Compiles `model` for `device` with Adam's defaults (for inference and timing).
pub fn compile(device: &Device, model: TrainGraph, params: &ParamSet) -> Result<Runner, String> {
    pollster::block_on(exec::compile(device, model, params, AdamConfig::default())).map_err(|e| e.to_string())
}

pub fn open_device(kind: DeviceKind, choice: &AdapterChoice) -> Result<Device, String> {
    if kind == DeviceKind::Cpu {
        return Ok(Device::Cpu);
    }
    match pollster::block_on(Gpu::new(choice)) {
        Ok(gpu) => match auto_prefers_cpu(kind, choice, &gpu) {
            Some(why) => {
                eprintln!("notice: {why}; running on the CPU device (--device gpu uses the adapter anyway)");
                Ok(Device::Cpu)
            }
            None => Ok(Device::Gpu(Rc::new(gpu))),
        },
        // A GPU that is there but misconfigured is an error, not a reason to run on the CPU.
        Err(e) if kind == DeviceKind::Auto && !matches!(e, GpuError::BadSetting { .. }) => {
            eprintln!("notice: {e}; running on the CPU instead");
            Ok(Device::Cpu)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Why `--device auto` takes the CPU device although an adapter opened: the
/// best adapter found is a software rasterizer (llvmpipe, SwiftShader, WARP),
/// which runs the same work on the same cores many times slower than the CPU
/// device. An adapter the user named is always used.
pub fn auto_prefers_cpu(kind: DeviceKind, choice: &AdapterChoice, gpu: &Gpu) -> Option<String> {
    let software = gpu.info.device_type == wgpu::DeviceType::Cpu;
    (kind == DeviceKind::Auto && software && choice.name.is_none())
        .then(|| format!("the best GPU adapter found, {}, is a software rasterizer", gpu.adapter_name()))
}
