//! `octconv train`: the seed recipe, with progress, per-epoch test accuracy,
//! checkpoints, a metrics file and the training curve.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use octconv::checkpoint;
use octconv::data::{Dataset, Split};
use octconv::exec::{self, DeviceData, ExecError, Program, Runner};
use octconv::nn::{checked_alpha, ParamSet, SeedNet, SEED_ALPHA};
use octconv::optim::{AdamConfig, OptimizerState};
use octconv::train::{evaluate, train_epoch, EpochReport, Recipe};

use super::plot::{self, CurvePoint};
use super::{capped_batch, RecipeArgs, RunArgs};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Seeds the initial weights and the shuffling
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of low-frequency channels inside the net: 0 is the plain CNN, the seed uses 0.5
    /// (with --resume, the checkpoint's)
    #[arg(long, allow_negative_numbers = true)]
    alpha: Option<f64>,
    /// Checkpoint to write (safetensors); the metrics CSV and curve SVG go beside it
    #[arg(long, default_value = "runs/mnist.safetensors")]
    out: PathBuf,
    /// Continue training from this checkpoint and the Adam state it names
    #[arg(long)]
    resume: Option<PathBuf>,
    /// With --resume: use this command's batch, learning rate and seed, not the checkpoint's
    #[arg(long)]
    new_recipe: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// `runs/mnist.safetensors` → `runs/mnist.<suffix>`
fn beside(out: &Path, suffix: &str) -> PathBuf {
    out.with_extension(suffix)
}

/// Where training starts: the net with fresh weights, or a checkpoint's net,
/// weights, epoch and Adam state.
struct Start {
    net: SeedNet,
    params: ParamSet,
    first_epoch: usize,
    optimizer: Option<OptimizerState>,
    /// The checkpoint's recipe, when resuming.
    saved_recipe: Option<SavedRecipe>,
    /// How many training images the checkpoint's run had (recorded since this version).
    saved_images: Option<usize>,
}

/// What a checkpoint's `recipe` metadata (`epochs=3 batch=64 lr=0.001 seed=1
/// adam`) says; a value it lacks or cannot parse is None.
struct SavedRecipe {
    batch: Option<usize>,
    lr: Option<f32>,
    seed: Option<u64>,
}

impl SavedRecipe {
    fn parse(text: &str) -> Self {
        let value = |key: &str| text.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='));
        SavedRecipe {
            batch: value("batch").and_then(|v| v.parse().ok()),
            lr: value("lr").and_then(|v| v.parse().ok()),
            seed: value("seed").and_then(|v| v.parse().ok()),
        }
    }
}

/// What every epoch needs: the runner with both sets on its device, and names for messages.
struct Session<'a> {
    runner: Runner,
    train: DeviceData,
    test: DeviceData,
    recipe: &'a Recipe,
    device: String,
    dataset: &'static str,
    alpha: f64,
}

pub fn run(args: TrainArgs) -> Result<ExitCode, String> {
    let mut recipe = recipe(&args)?;
    check_writable(&args.out)?;
    let kind = args.run.dataset_kind();
    let train = args.recipe.limited(args.run.load(Split::Train)?)?;
    let test = args.run.load(Split::Test)?;
    let start = start(&args, &recipe)?;
    if let Some(saved) = &start.saved_recipe {
        follow_saved_recipe(&mut recipe, saved, args.new_recipe);
    }
    recipe.batch = capped_batch(recipe.batch, train.len(), "training images");
    // The steps Adam took are counted at the checkpoint's own batch size.
    let saved_batch = start.saved_recipe.as_ref().and_then(|r| r.batch);
    if let (Some(state), Some(images), Some(batch)) = (&start.optimizer, start.saved_images, saved_batch) {
        check_steps(state.step, start.first_epoch, images, batch, args.resume.as_deref())?;
    }
    let device = args.run.device()?;
    let model = start.net.graph(recipe.batch, true, device.conv_lowering()).map_err(|e| e.to_string())?;
    let adam = AdamConfig { lr: recipe.lr, ..AdamConfig::default() };
    let (runner, train_on_device, test_on_device) =
        pollster::block_on(prepare(exec::compile(&device, model, &start.params, adam), &start, &train, &test))
            .map_err(|e| e.to_string())?;
    let limited = if args.recipe.limit.is_some() { " (limited)" } else { "" };
    println!(
        "training the Octave MNIST net on {} ({} training{limited} / {} test images), device: {}",
        kind.label(),
        train.len(),
        test.len(),
        device.describe()
    );
    println!(
        "recipe: {} epochs, batch {}, Adam lr {}, seed {}; octave alpha {}",
        recipe.epochs, recipe.batch, recipe.lr, recipe.seed, start.net.alpha
    );

    let mut session = Session {
        runner,
        train: train_on_device,
        test: test_on_device,
        recipe: &recipe,
        device: device.describe(),
        dataset: kind.label(),
        alpha: start.net.alpha,
    };
    let started = Instant::now();
    let mut reports: Vec<EpochReport> = Vec::new();
    let mut curve: Vec<CurvePoint> = Vec::new();
    let (metrics_path, curve_path) = (beside(&args.out, "metrics.csv"), beside(&args.out, "curve.svg"));
    // A resumed run continues the metrics of the epochs its checkpoint holds.
    let earlier = if args.resume.is_some() { earlier_metrics(&metrics_path, start.first_epoch) } else { String::new() };
    for epoch in start.first_epoch..recipe.epochs {
        let report = session.epoch(epoch, &mut curve)?;
        session.save(&args.out, &report)?;
        reports.push(report);
        // Written after every epoch, so a run that stops keeps what it measured.
        write_metrics(&metrics_path, &earlier, &reports)?;
        plot::training_curve(&curve_path, &curve, &reports)?;
    }
    finish(&args, &reports, [&metrics_path, &curve_path], started)
}

/// A resumed run continues with the checkpoint's batch, learning rate and
/// seed (the seed picks each epoch's shuffle) unless told otherwise; it says
/// what differs either way.
fn follow_saved_recipe(recipe: &mut Recipe, saved: &SavedRecipe, keep_mine: bool) {
    let mut differences = Vec::new();
    if let Some(batch) = saved.batch.filter(|&b| b != recipe.batch) {
        differences.push(format!("batch {batch} (this command: {})", recipe.batch));
        if !keep_mine {
            recipe.batch = batch;
        }
    }
    if let Some(lr) = saved.lr.filter(|&l| l != recipe.lr) {
        differences.push(format!("lr {lr} (this command: {})", recipe.lr));
        if !keep_mine {
            recipe.lr = lr;
        }
    }
    if let Some(seed) = saved.seed.filter(|&s| s != recipe.seed) {
        differences.push(format!("seed {seed} (this command: {})", recipe.seed));
        if !keep_mine {
            recipe.seed = seed;
        }
    }
    if !differences.is_empty() {
        let choice = if keep_mine {
            "this command's, as --new-recipe asks"
        } else {
            "the checkpoint's (--new-recipe uses this command's)"
        };
        eprintln!("notice: the checkpoint was trained with {}; continuing with {choice}", differences.join(", "));
    }
}

/// Adam's step count must be what `epochs` epochs of `images` images at
/// `batch` take: another count means the state belongs to another run.
fn check_steps(step: u64, epochs: usize, images: usize, batch: usize, path: Option<&Path>) -> Result<(), String> {
    let expected = (epochs * images.div_ceil(batch.max(1))) as u64;
    if step == expected {
        return Ok(());
    }
    let name = path.map_or_else(String::new, |p| p.display().to_string());
    Err(format!(
        "{name}: its Adam state has taken {step} steps, but {epochs} epochs of {images} images at batch {batch} take {expected}; it belongs to another run (move the Adam file away to restart its moments, or resume with the original --batch)"
    ))
}

/// Fails with one sentence, before any training, when `out` cannot be written.
fn check_writable(out: &Path) -> Result<(), String> {
    if out.is_dir() {
        return Err(format!(
            "--out {} is a folder; give a file name, such as {}",
            out.display(),
            out.join("mnist.safetensors").display()
        ));
    }
    let probe = out.with_extension("probe.tmp");
    let written = probe
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&probe, b""));
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| format!("--out {}: cannot be written ({e}); choose a folder you can write to", out.display()))
}

/// The recipe the arguments ask for, or why it cannot run.
fn recipe(args: &TrainArgs) -> Result<Recipe, String> {
    if let Some(alpha) = args.alpha {
        checked_alpha(alpha).map_err(|e| format!("--{e}"))?;
    }
    args.recipe.recipe(args.seed)
}

/// The net with fresh weights from the seed, or what `--resume` names.
fn start(args: &TrainArgs, recipe: &Recipe) -> Result<Start, String> {
    let Some(path) = &args.resume else {
        let alpha = checked_alpha(args.alpha.unwrap_or(SEED_ALPHA)).map_err(|e| format!("--{e}"))?;
        let net = SeedNet::with_alpha(alpha);
        let params = ParamSet::init(&net.params(), recipe.seed);
        return Ok(Start { net, params, first_epoch: 0, optimizer: None, saved_recipe: None, saved_images: None });
    };
    let name = path.display().to_string();
    let saved = checkpoint::load(path).map_err(|e| e.to_string())?;
    let (net, params) = saved.net_and_params(args.alpha, &name).map_err(|e| e.to_string())?;
    let first_epoch = saved.metadata.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0);
    let optimizer = checkpoint::load_training_optimizer(path, &saved, &net.params()).map_err(|e| e.to_string())?;
    if optimizer.is_none() {
        eprintln!("notice: {name} has no Adam state beside it; Adam restarts from zero moments");
    }
    if first_epoch >= recipe.epochs {
        return Err(format!(
            "{name} has already trained {first_epoch} epochs; pass --epochs above {first_epoch} to continue"
        ));
    }
    let saved_images = saved.metadata.get("train_images").and_then(|n| n.parse().ok());
    let saved_recipe = saved.metadata.get("recipe").map(|text| SavedRecipe::parse(text));
    Ok(Start { net, params, first_epoch, optimizer, saved_recipe, saved_images })
}

/// The compiled runner with Adam's saved state, and both sets on its device
/// (each step then gathers its batch there).
async fn prepare(
    compiling: impl std::future::Future<Output = Result<Runner, ExecError>>,
    start: &Start,
    train: &Dataset,
    test: &Dataset,
) -> Result<(Runner, DeviceData, DeviceData), ExecError> {
    let mut runner = compiling.await?;
    if let Some(state) = &start.optimizer {
        runner.load_optimizer_state(state)?;
    }
    let train = runner.upload_dataset(train).await?;
    let test = runner.upload_dataset(test).await?;
    Ok((runner, train, test))
}

impl Session<'_> {
    /// Trains and tests one epoch with a progress bar (a line every tenth without a terminal).
    fn epoch(&mut self, epoch: usize, curve: &mut Vec<CurvePoint>) -> Result<EpochReport, String> {
        let (epochs, total) = (self.recipe.epochs, self.train.len);
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{epochs}", epoch + 1));
        let epoch_start = Instant::now();
        let mut next_line = if std::io::stderr().is_terminal() { usize::MAX } else { total / 10 };
        let progress = |done: usize, m: octconv::exec::Metrics| {
            let rate = done as f64 / epoch_start.elapsed().as_secs_f64();
            let message = format!("loss {:.4}  acc {:.4}  {rate:.0} samples/s", m.loss(), m.accuracy());
            if done >= next_line {
                eprintln!("epoch {}/{epochs}: {done}/{total} {message}", epoch + 1);
                next_line += total / 10;
            }
            bar.set_position(done as u64);
            bar.set_message(message);
            curve.push(CurvePoint { epoch: epoch as f64 + done as f64 / total as f64, loss: m.loss() });
        };
        let runner: &mut dyn Program = self.runner.as_mut();
        let metrics = pollster::block_on(train_epoch(runner, self.train, self.recipe.seed, epoch, 20, progress))
            .map_err(|e| e.to_string())?;
        let seconds = epoch_start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if !metrics.loss().is_finite() {
            let lr = self.recipe.lr;
            return Err(format!(
                "training diverged in epoch {}: the training loss became {} by example {} of {} (Adam's learning rate {lr} is likely too large; try --lr {}); nothing of this epoch was saved",
                epoch + 1,
                metrics.loss(),
                metrics.samples,
                self.train.len,
                lr / 10.0
            ));
        }
        let tested = pollster::block_on(evaluate(runner, self.test)).map_err(|e| e.to_string())?;
        let report = EpochReport {
            epoch: epoch + 1,
            train_loss: metrics.loss(),
            train_accuracy: metrics.accuracy(),
            test_loss: tested.loss(),
            test_accuracy: tested.accuracy(),
            seconds,
        };
        println!(
            "epoch {}/{epochs}: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.1} s, {:.0} samples/s",
            report.epoch,
            report.train_loss,
            report.train_accuracy,
            report.test_loss,
            report.test_accuracy,
            seconds,
            total as f64 / seconds
        );
        Ok(report)
    }

    /// The checkpoint after `report`'s epoch, and Adam's state beside it.
    fn save(&self, out: &Path, report: &EpochReport) -> Result<(), String> {
        let recipe = self.recipe;
        let params = pollster::block_on(self.runner.params()).map_err(|e| e.to_string())?;
        if let Some(name) = params.first_non_finite() {
            return Err(format!(
                "training diverged in epoch {}: {name} holds values that are not finite numbers (try a smaller --lr); {} was not written",
                report.epoch,
                out.display()
            ));
        }
        let metadata = HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("model".to_string(), "octconv seed Octave MNIST net".to_string()),
            ("dataset".to_string(), self.dataset.to_string()),
            ("alpha".to_string(), self.alpha.to_string()),
            ("train_images".to_string(), self.train.len.to_string()),
            ("epoch".to_string(), report.epoch.to_string()),
            ("test_accuracy".to_string(), format!("{:.4}", report.test_accuracy)),
            (
                "recipe".to_string(),
                format!("epochs={} batch={} lr={} seed={} adam", recipe.epochs, recipe.batch, recipe.lr, recipe.seed),
            ),
            ("device".to_string(), self.device.clone()),
        ]);
        let state = pollster::block_on(self.runner.optimizer_state()).map_err(|e| e.to_string())?;
        checkpoint::save_training(out, &params, &metadata, &state, report.epoch).map_err(|e| e.to_string())
    }
}

/// The closing lines.
fn finish(
    args: &TrainArgs,
    reports: &[EpochReport],
    [metrics_path, curve_path]: [&Path; 2],
    started: Instant,
) -> Result<ExitCode, String> {
    let last = reports.last().expect("at least one epoch ran");
    println!(
        "done in {:.1} s: test accuracy {:.4} after {} epochs\nwrote {}, {}, {}",
        started.elapsed().as_secs_f64(),
        last.test_accuracy,
        last.epoch,
        args.out.display(),
        metrics_path.display(),
        curve_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

const METRICS_HEADER: &str = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n";

/// The rows of an earlier metrics file for epochs up to `epochs` (a resumed
/// run replaces any later rows, which belong to a run that did not finish).
fn earlier_metrics(path: &Path, epochs: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept = text
        .lines()
        .skip(1)
        .filter(|l| l.split(',').next().and_then(|e| e.parse::<usize>().ok()).is_some_and(|e| e <= epochs));
    kept.map(|l| format!("{l}\n")).collect()
}

/// The metrics file: the earlier rows, then this run's epochs (one rename).
fn write_metrics(path: &Path, earlier: &str, reports: &[EpochReport]) -> Result<(), String> {
    let mut text = format!("{METRICS_HEADER}{earlier}");
    for r in reports {
        text.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}\n",
            r.epoch, r.train_loss, r.train_accuracy, r.test_loss, r.test_accuracy, r.seconds
        ));
    }
    octconv::files::write_atomically(path, text.as_bytes()).map_err(|e| e.to_string())
}
