//! `octconv lab`: edit a kernel and learn at once whether it still compiles,
//! still matches its CPU twin and its gradient rule, and how fast it is
//! against the shipped one (see `octconv::lab`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use octconv::data::{load_split, Dataset, DatasetKind, Split};
use octconv::lab::{shipped_file, Lab, Report, Sweep};
use octconv::ops::kernel::COMMON;
use octconv::ops::FAMILIES;
use serde_json::json;

use super::AdapterArgs;

#[derive(Args, Debug)]
#[group(id = "mode", required = true, multiple = false)]
pub struct LabArgs {
    /// The folder of .wgsl files (a copy of shaders/)
    dir: PathBuf,
    /// Copy the shipped shaders into the folder to start from
    #[arg(long, group = "mode")]
    init: bool,
    /// Check every file that differs from the shipped one, once; exit 1 on a failure
    #[arg(long, group = "mode")]
    once: bool,
    /// Check each file again whenever it is saved (Ctrl-C ends)
    #[arg(long, group = "mode")]
    watch: bool,
    /// With --once: check every file, changed or not
    #[arg(long)]
    all: bool,
    /// With --once: also write the results as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
    /// Timed repetitions per kernel (the median is reported)
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// After the checks pass, train the seed net this many steps (batch 64, real
    /// MNIST) with the edited kernels beside the shipped ones and compare the losses
    #[arg(long, default_value_t = 0)]
    train: usize,
    /// Folder with MNIST for --train (fetched there when missing)
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    #[command(flatten)]
    adapter: AdapterArgs,
}

pub fn run(args: LabArgs) -> Result<ExitCode, String> {
    if args.init {
        return init(&args.dir);
    }
    if !args.dir.is_dir() {
        return Err(format!(
            "{} is not a folder; start one with octconv lab --init {}",
            args.dir.display(),
            args.dir.display()
        ));
    }
    // The first --train batches of MNIST's training set, when asked for.
    let training = match args.train {
        0 => None,
        steps => {
            let train = load_split(DatasetKind::Digits, &args.data, Split::Train, true).map_err(|e| e.to_string())?;
            Some((train.first(steps * 64), steps))
        }
    };
    let mut lab = pollster::block_on(Lab::open(&args.adapter.choice())).map_err(|e| e.to_string())?;
    lab.repeats = args.repeats.max(1);
    println!(
        "shader lab on {} ({} tiling), files in {}",
        lab.edited.adapter_name(),
        lab.edited.tiling.name(),
        args.dir.display()
    );
    let mut checker = Checker { lab, training };
    if args.watch {
        watch(&mut checker, &args.dir)
    } else {
        once(&mut checker, &args)
    }
}

/// Writes the shipped shaders into `dir`, leaving files that are already there.
fn init(dir: &Path) -> Result<ExitCode, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot be created: {e}; choose a folder you can write to", dir.display()))?;
    let files = std::iter::once(COMMON).chain(FAMILIES.iter().flat_map(|f| f.shaders.iter().copied()));
    for file in files {
        let path = dir.join(file.name);
        if path.exists() {
            println!("kept {} (already there)", path.display());
            continue;
        }
        std::fs::write(&path, file.source)
            .map_err(|e| format!("{}: cannot be written: {e}; choose a folder you can write to", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("now edit a kernel there and run: octconv lab --watch {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The octconv shader files in `dir` and their text (a file being written may not read as text yet).
fn shader_files(dir: &Path) -> Vec<(String, Option<String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<(String, Option<String>)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|name| name.ends_with(".wgsl") && shipped_file(name).is_some())
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(&name)).ok();
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// The lab with what a check of a file also does (the short training run).
struct Checker {
    lab: Lab,
    training: Option<(Dataset, usize)>,
}

impl Checker {
    /// The file's report, then its variants' (`// lab: NAME = …`), printed; the report is returned.
    fn check(&mut self, name: &str, text: &str) -> (Report, Vec<Sweep>) {
        let mut report = pollster::block_on(self.lab.check(name, text));
        if let Some((data, steps)) = &self.training {
            pollster::block_on(self.lab.train_check(&mut report, data, *steps));
        }
        println!("{report}");
        let sweeps = pollster::block_on(self.lab.sweep(name, text));
        for sweep in &sweeps {
            println!("{sweep}");
        }
        println!();
        (report, sweeps)
    }
}

fn once(checker: &mut Checker, args: &LabArgs) -> Result<ExitCode, String> {
    let mut reports = Vec::new();
    for (name, text) in shader_files(&args.dir) {
        let Some(text) = text else {
            return Err(format!("{}: cannot be read as text; save it as UTF-8", args.dir.join(&name).display()));
        };
        if args.all || checker.lab.changed(&name, &text) {
            reports.push(checker.check(&name, &text));
        }
    }
    if reports.is_empty() {
        println!("no kernel file in {} differs from the shipped one (--all checks them anyway)", args.dir.display());
    }
    let (passed, failed): (usize, usize) =
        reports.iter().fold((0, 0), |(p, f), (r, _)| (p + r.passed(), f + r.failed()));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&reports.iter().map(|(r, s)| report_json(r, s)).collect::<Vec<_>>())
            .expect("plain values");
        octconv::files::write_atomically(path, format!("{text}\n").as_bytes()).map_err(|e| e.to_string())?;
    }
    println!("{} files checked", reports.len());
    println!("lab: {passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn report_json(r: &Report, sweeps: &[Sweep]) -> serde_json::Value {
    let sweeps: Vec<serde_json::Value> = sweeps
        .iter()
        .map(|s| {
            json!({
                "constant": s.spec.constant,
                "ranked": s.ranked().iter().map(|v| json!({"value": v.value, "seconds": v.seconds()})).collect::<Vec<_>>(),
                "dropped": s.dropped().iter().map(|v| v.value.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "sweeps": sweeps,
        "file": r.file,
        "passed": r.passed(),
        "failed": r.failed(),
        "seconds": r.seconds,
        "compile_error": r.compile_error.as_ref().map(|d| json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message})),
        "failures": r.findings.iter().filter(|f| !f.passed).map(|f| f.text.clone()).collect::<Vec<_>>(),
        "training": r.training.as_ref().map(|t| json!({"shipped": t.shipped, "edited": t.edited})),
        "times": r.times.iter().map(|t| json!({"kernel": t.kernel, "shipped_seconds": t.shipped, "edited_seconds": t.edited, "clock": t.clock.name()})).collect::<Vec<_>>(),
    })
}

/// Checks each file again after it is saved: file-system events, debounced
/// (an editor's save can be several writes), name the files to look at.
fn watch(checker: &mut Checker, dir: &Path) -> Result<ExitCode, String> {
    use notify_debouncer_mini::notify::RecursiveMode;
    // The text of each file when it was last looked at (None: removed); reading a
    // file makes events too, and a file that does not compile stays "changed".
    let mut seen: HashMap<String, Option<String>> = HashMap::new();
    for (name, text) in shader_files(dir) {
        if let Some(text) = text.as_ref().filter(|t| checker.lab.changed(&name, t)) {
            checker.check(&name, text);
        }
        seen.insert(name, text);
    }
    let (events, receiver) = std::sync::mpsc::channel();
    let mut debouncer = notify_debouncer_mini::new_debouncer(Duration::from_millis(150), events)
        .map_err(|e| format!("{}: cannot be watched: {e}; use --once DIR to check it once", dir.display()))?;
    debouncer
        .watcher()
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("{}: cannot be watched: {e}; use --once DIR to check it once", dir.display()))?;
    println!("watching {}: save a kernel file to check it (Ctrl-C ends)", dir.display());
    for batch in receiver {
        let events = batch
            .map_err(|e| format!("{}: watching failed: {e}; start the lab again, or use --once DIR", dir.display()))?;
        let mut names: Vec<String> =
            events.iter().filter_map(|e| e.path.file_name()?.to_str().map(String::from)).collect();
        names.sort();
        names.dedup();
        for name in names.into_iter().filter(|n| n.ends_with(".wgsl") && shipped_file(n).is_some()) {
            let path = dir.join(&name);
            let text = if path.exists() { Some(std::fs::read_to_string(&path).ok()) } else { None };
            let now = text.clone().flatten();
            if seen.get(&name) == Some(&now) && text != Some(None) {
                continue; // nothing new since it was last looked at
            }
            seen.insert(name.clone(), now);
            match text {
                None => {
                    checker.lab.forget(&name);
                    println!("{name} was removed: the shipped kernel is used again\n");
                }
                Some(Some(text)) if checker.lab.changed(&name, &text) => drop(checker.check(&name, &text)),
                Some(Some(_)) => {}
                Some(None) => println!("{name}: cannot be read as text; waiting for the next save\n"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
