//! `octconv study`: the octave trade-off measured. For each alpha and seed it
//! trains the recipe and tests it; for each alpha it times the training step
//! against alpha = 0 on this device. A table on stdout, and a CSV, a JSON and
//! an SVG (accuracy against measured time and against MACs). Each finished
//! run is kept as a file of its own, so an interrupted study resumes where
//! it stopped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use octconv::data::{Dataset, Split};
use octconv::exec::{self, median, Device, ExecError, Program};
use octconv::files;
use octconv::nn::{checked_alpha, ParamSet, SeedNet};
use octconv::optim::AdamConfig;
use octconv::train::{evaluate, seconds_per_step, train_epoch, Recipe};
use serde_json::{json, Value};

use super::plot::{self, StudyPoint};
use super::progress::Progress;
use super::{capped_batch, RecipeArgs, RunArgs};

#[derive(Args, Debug)]
pub struct StudyArgs {
    /// The octave shares to compare (0 is the plain CNN and the timing reference)
    #[arg(long, value_delimiter = ',', default_value = "0,0.125,0.25,0.5,0.75")]
    alphas: Vec<f64>,
    /// Seeds per alpha (1, 2, …): the spread of the accuracy
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Rounds of the step timing (each times every alpha; the median ratio is reported)
    #[arg(long, default_value_t = 5)]
    timing_rounds: usize,
    /// Folder for the results (a subfolder per dataset); finished runs there are not repeated
    #[arg(long, default_value = "runs/study")]
    out: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

/// One finished training run.
struct RunResult {
    alpha: f64,
    test_accuracy: f64,
    seconds: f64,
}

/// What the study reports for one alpha.
struct Row {
    alpha: f64,
    accuracies: Vec<f64>,
    macs: u64,
    params: u64,
    step_seconds: f64,
    step_ratio: f64,
}

pub fn run(args: StudyArgs) -> Result<ExitCode, String> {
    let alphas = alphas(&args)?;
    let mut recipe = args.recipe.recipe(0)?; // each run sets its seed
    if args.seeds == 0 || args.timing_rounds == 0 {
        return Err("--seeds and --timing-rounds must be at least 1".into());
    }
    let kind = args.run.dataset_kind();
    let train = args.recipe.limited(args.run.load(Split::Train)?)?;
    let test = args.run.load(Split::Test)?;
    recipe.batch = capped_batch(recipe.batch, train.len(), "training images");
    let device = args.run.device()?;
    let dir = args.out.join(kind.label().to_lowercase().replace(' ', "-"));
    println!(
        "octave study on {} ({} training / {} test images), device: {}\nalphas {:?}, {} seeds each, {} epochs, batch {}, Adam lr {}; results in {}",
        kind.label(),
        train.len(),
        test.len(),
        device.describe(),
        alphas,
        args.seeds,
        recipe.epochs,
        recipe.batch,
        recipe.lr,
        dir.display()
    );

    let timing = step_times(&device, &alphas, &train, recipe.batch, args.timing_rounds)?;
    let recipe_json = json!({"dataset": kind.label(), "epochs": recipe.epochs, "batch": recipe.batch, "lr": recipe.lr,
        "limit": args.recipe.limit, "train_images": train.len()});
    let results = train_all(&device, &alphas, args.seeds, &recipe, &recipe_json, &train, &test, &dir)?;

    let rows: Vec<Row> = alphas
        .iter()
        .zip(&timing)
        .map(|(&alpha, &(step_seconds, step_ratio))| {
            let net = SeedNet::with_alpha(alpha);
            let accuracies = results.iter().filter(|r| r.alpha == alpha).map(|r| r.test_accuracy).collect();
            Row { alpha, accuracies, macs: net.forward_macs(), params: net.param_count(), step_seconds, step_ratio }
        })
        .collect();
    print_table(&rows);
    let training_seconds: f64 = results.iter().map(|r| r.seconds).sum();
    write_outputs(&dir, &rows, &recipe_json, &device.describe(), training_seconds)?;
    Ok(ExitCode::SUCCESS)
}

/// The alphas asked for, checked, with 0 first (the reference of every ratio).
fn alphas(args: &StudyArgs) -> Result<Vec<f64>, String> {
    let mut alphas = Vec::new();
    for &a in &args.alphas {
        checked_alpha(a).map_err(|e| format!("--alphas: {e}"))?;
        if !alphas.contains(&a) {
            alphas.push(a);
        }
    }
    if !alphas.contains(&0.0) {
        alphas.push(0.0);
    }
    alphas.sort_by(f64::total_cmp);
    Ok(alphas)
}

/// The training step's seconds for each alpha and its ratio to alpha 0:
/// each round times a few back-to-back steps of every alpha, so that each
/// ratio compares times taken seconds apart (this machine's speed drifts);
/// the medians over rounds are reported. Real training batches, gathered on the device.
fn step_times(
    device: &Device,
    alphas: &[f64],
    train: &Dataset,
    batch: usize,
    rounds: usize,
) -> Result<Vec<(f64, f64)>, String> {
    const STEPS: usize = 5;
    let data = train.first(batch * STEPS);
    let mut runners = Vec::new();
    for &alpha in alphas {
        let net = SeedNet::with_alpha(alpha);
        let model = net.graph(batch, true, device.conv_lowering()).map_err(|e| e.to_string())?;
        let params = ParamSet::init(&net.params(), 1);
        let runner = pollster::block_on(async {
            let mut runner = exec::compile(device, model, &params, AdamConfig::default()).await?;
            let on_device = runner.upload_dataset(&data).await?;
            runner.set_order(on_device, &(0..data.len()).collect::<Vec<_>>())?;
            Ok::<_, ExecError>((runner, on_device))
        })
        .map_err(|e| e.to_string())?;
        runners.push(runner);
    }
    let time_steps = |(runner, data): &mut (exec::Runner, exec::DeviceData)| -> Result<f64, String> {
        pollster::block_on(seconds_per_step(runner.as_mut(), *data, STEPS)).map_err(|e| e.to_string())
    };
    for runner in &mut runners {
        time_steps(runner)?; // warm-up
    }
    let mut seconds = vec![Vec::new(); alphas.len()];
    let mut ratios = vec![Vec::new(); alphas.len()];
    for _ in 0..rounds {
        let round = runners.iter_mut().map(time_steps).collect::<Result<Vec<_>, _>>()?;
        for k in 0..alphas.len() {
            seconds[k].push(round[k]);
            ratios[k].push(round[k] / round[0]);
        }
    }
    let timing: Vec<(f64, f64)> = seconds.into_iter().zip(ratios).map(|(s, r)| (median(s), median(r))).collect();
    println!("\ntraining step (batch {batch}) on this device, median of {rounds} rounds of {STEPS} steps:");
    for (alpha, (s, r)) in alphas.iter().zip(&timing) {
        println!("  alpha {alpha:<6} {:>8.2} ms  {r:.3} × alpha 0", s * 1e3);
    }
    println!();
    Ok(timing)
}

/// Trains every (alpha, seed) run not already finished in `dir`, with one progress display.
#[allow(clippy::too_many_arguments)]
fn train_all(
    device: &Device,
    alphas: &[f64],
    seeds: u64,
    recipe: &Recipe,
    recipe_json: &Value,
    train: &Dataset,
    test: &Dataset,
    dir: &Path,
) -> Result<Vec<RunResult>, String> {
    let runs: Vec<(f64, u64)> = alphas.iter().flat_map(|&a| (1..=seeds).map(move |s| (a, s))).collect();
    let mut results = Vec::new();
    let mut pending = Vec::new();
    for &(alpha, seed) in &runs {
        match finished_run(&run_path(dir, alpha, seed), recipe_json) {
            Some(result) => results.push(result),
            None => pending.push((alpha, seed)),
        }
    }
    if !results.is_empty() {
        println!("{} of {} runs already finished in {} (not repeated)", results.len(), runs.len(), dir.display());
    }
    let total_epochs = pending.len() * recipe.epochs;
    let progress = Progress::new(total_epochs as u64);
    for (k, &(alpha, seed)) in pending.iter().enumerate() {
        let label = format!("run {}/{} (alpha {alpha}, seed {seed})", results.len() + 1, runs.len());
        let result = train_one(device, alpha, seed, recipe, train, test, &label, &progress)?;
        let record = json!({"alpha": alpha, "seed": seed, "recipe": recipe_json, "device": device.describe(),
            "test_accuracy": result.test_accuracy, "seconds": result.seconds});
        let text = serde_json::to_string_pretty(&record).expect("numbers and strings") + "\n";
        files::write_atomically(&run_path(dir, alpha, seed), text.as_bytes()).map_err(|e| e.to_string())?;
        progress.line(&format!(
            "{label}: test accuracy {:.4}, {:.0} s; {} runs to go",
            result.test_accuracy,
            result.seconds,
            pending.len() - k - 1
        ));
        results.push(result);
    }
    progress.finish();
    Ok(results)
}

/// One run: the recipe at `alpha` from seed `seed`, then the test set.
#[allow(clippy::too_many_arguments)]
fn train_one(
    device: &Device,
    alpha: f64,
    seed: u64,
    recipe: &Recipe,
    train: &Dataset,
    test: &Dataset,
    label: &str,
    progress: &Progress,
) -> Result<RunResult, String> {
    let started = Instant::now();
    let net = SeedNet::with_alpha(alpha);
    let model = net.graph(recipe.batch, true, device.conv_lowering()).map_err(|e| e.to_string())?;
    let params = ParamSet::init(&net.params(), seed);
    let adam = AdamConfig { lr: recipe.lr, ..AdamConfig::default() };
    let tested = pollster::block_on(async {
        let mut runner = exec::compile(device, model, &params, adam).await?;
        let train = runner.upload_dataset(train).await?;
        let test = runner.upload_dataset(test).await?;
        let runner: &mut dyn Program = runner.as_mut();
        for epoch in 0..recipe.epochs {
            progress.set_message(&format!("{label}, epoch {}/{}", epoch + 1, recipe.epochs));
            train_epoch(runner, train, seed, epoch, 50, |_, _| {}).await?;
            progress.epoch_done();
        }
        evaluate(runner, test).await
    })
    .map_err(|e| e.to_string())?;
    if !tested.loss().is_finite() {
        return Err(format!("{label}: the test loss is {}; the run diverged (try a smaller --lr)", tested.loss()));
    }
    Ok(RunResult { alpha, test_accuracy: tested.accuracy(), seconds: started.elapsed().as_secs_f64() })
}

/// `<dir>/runs/alpha-<alpha>-seed-<seed>.json`
fn run_path(dir: &Path, alpha: f64, seed: u64) -> PathBuf {
    dir.join("runs").join(format!("alpha-{alpha}-seed-{seed}.json"))
}

/// A run finished earlier with the same recipe, if its file is there and readable.
fn finished_run(path: &Path, recipe_json: &Value) -> Option<RunResult> {
    let record: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if &record["recipe"] != recipe_json {
        return None;
    }
    Some(RunResult {
        alpha: record["alpha"].as_f64()?,
        test_accuracy: record["test_accuracy"].as_f64()?,
        seconds: record["seconds"].as_f64()?,
    })
}

/// Mean and sample standard deviation (0 for a single value).
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// 1 − ¾α(2 − α): an octave conv layer's cost against a plain one's.
fn theory_ratio(alpha: f64) -> f64 {
    1.0 - 0.75 * alpha * (2.0 - alpha)
}

fn print_table(rows: &[Row]) {
    let reference = &rows[0];
    println!(
        "{:>6} {:>5} {:>18} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8}",
        "alpha", "runs", "test accuracy", "MMACs", "× α0", "params", "step ms", "× α0", "theory"
    );
    for r in rows {
        let (mean, sd) = mean_sd(&r.accuracies);
        println!(
            "{:>6} {:>5} {:>10.4} ± {:.4} {:>9.3} {:>9.3} {:>9} {:>8.2} {:>9.3} {:>8.3}",
            r.alpha,
            r.accuracies.len(),
            mean,
            sd,
            r.macs as f64 / 1e6,
            r.macs as f64 / reference.macs as f64,
            r.params,
            r.step_seconds * 1e3,
            r.step_ratio,
            theory_ratio(r.alpha)
        );
    }
    println!("(MMACs: multiply-accumulates of one image's forward pass; theory: 1 − ¾α(2−α), one octave conv layer)");
}

/// study.csv, study.json and study.svg in `dir`.
fn write_outputs(dir: &Path, rows: &[Row], recipe: &Value, device: &str, training_seconds: f64) -> Result<(), String> {
    let reference = &rows[0];
    let mut csv = String::from(
        "alpha,runs,accuracy_mean,accuracy_sd,forward_macs,macs_ratio,params,step_seconds,step_ratio,theory_ratio\n",
    );
    let mut json_rows = Vec::new();
    let mut points = Vec::new();
    for r in rows {
        let (mean, sd) = mean_sd(&r.accuracies);
        let macs_ratio = r.macs as f64 / reference.macs as f64;
        csv.push_str(&format!(
            "{},{},{mean:.6},{sd:.6},{},{macs_ratio:.4},{},{:.6},{:.4},{:.4}\n",
            r.alpha,
            r.accuracies.len(),
            r.macs,
            r.params,
            r.step_seconds,
            r.step_ratio,
            theory_ratio(r.alpha)
        ));
        json_rows.push(json!({"alpha": r.alpha, "accuracies": r.accuracies, "accuracy_mean": mean, "accuracy_sd": sd,
            "forward_macs": r.macs, "macs_ratio": macs_ratio, "params": r.params, "step_seconds": r.step_seconds,
            "step_ratio": r.step_ratio, "theory_ratio": theory_ratio(r.alpha)}));
        points.push(StudyPoint { alpha: r.alpha, mean, sd, step_ms: r.step_seconds * 1e3, mmacs: r.macs as f64 / 1e6 });
    }
    let write = |name: &str, text: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        files::write_atomically(&path, text.as_bytes()).map_err(|e| e.to_string())?;
        Ok(path)
    };
    let csv_path = write("study.csv", &csv)?;
    let report = json!({"device": device, "recipe": recipe, "training_seconds": training_seconds, "alphas": json_rows});
    let json_path = write("study.json", &(serde_json::to_string_pretty(&report).expect("plain values") + "\n"))?;
    let svg_path = dir.join("study.svg");
    let title = format!("{} · {}", recipe["dataset"].as_str().unwrap_or(""), device);
    plot::study_panels(&svg_path, &points, &title)?;
    println!("wrote {}, {}, {}", csv_path.display(), json_path.display(), svg_path.display());
    Ok(())
}
