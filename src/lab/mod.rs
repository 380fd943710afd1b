//! The shader lab: an edited kernel file checked the way the shipped ones
//! are. For a `.wgsl` file of a folder (a copy of `shaders/`), it reports
//!
//! 1. compile errors at the line and column of the user's file (not shifted
//!    by the `common.wgsl` prepended to it), with the line and a caret;
//! 2. every check case of the file's op family against the CPU twin (both
//!    tiling variants), with the first wrong element;
//! 3. every gradient rule of the family through the edited kernels against
//!    central differences of the edited GPU forward, so that a backward kernel
//!    and its twin agreeing on a wrong rule are caught too;
//! 4. the edited kernels against the shipped ones at the seed net's shapes
//!    (wall-clock medians, labelled so).
//!
//! A file that does not compile leaves the last good version in use.

mod sweep;

pub use sweep::{sweep_specs, with_constant, Sweep, SweepSpec, Variant};

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::check;
use crate::data::{epoch_order, Dataset};
use crate::exec::{self, Device, ExecError};
use crate::gpu::{AdapterChoice, Clock, Gpu, GpuError, GpuTensor};
use crate::graph::{Graph, Source};
use crate::nn::ParamSet;
use crate::nn::SeedNet;
use crate::ops::cases::{GradientCase, Seeds};
use crate::ops::kernel::{ShaderFile, COMMON};
use crate::ops::{Family, Op, FAMILIES};
use crate::optim::AdamConfig;
use crate::tensor::Tensor;

/// A compile error, located in the user's file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the error has no location (then `message` names the entry point).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line and a caret under the column.
    pub excerpt: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(f, "{}:{}:{}: {}\n{}", self.file, self.line, self.column, self.message, self.excerpt)
    }
}

/// Why `text` (the file `name`) would not compile after the shipped
/// common.wgsl, located in the user's file (or in common.wgsl), or None when
/// it compiles and has every entry point in `entries`.
pub fn diagnose(name: &str, text: &str, entries: &[&str]) -> Option<Diagnostic> {
    diagnose_with(COMMON.source, name, text, entries)
}

/// `diagnose` with `prelude` as the text of common.wgsl.
fn diagnose_with(prelude: &str, name: &str, text: &str, entries: &[&str]) -> Option<Diagnostic> {
    let combined = format!("{prelude}\n{text}");
    // Lines before the file's first line: the prelude's, then the joining newline.
    let prelude_lines = prelude.matches('\n').count() + 1;
    let locate = |location: Option<naga::SourceLocation>, message: String| {
        let Some(at) = location else {
            return Diagnostic { file: name.into(), line: 0, column: 0, message, excerpt: String::new() };
        };
        let (mut file, mut line, mut source) = (name.to_string(), at.line_number as usize, text);
        if line > prelude_lines {
            line -= prelude_lines;
        } else {
            (file, source) = (COMMON.name.to_string(), prelude);
        }
        let column = at.line_position as usize;
        let code = source.lines().nth(line - 1).unwrap_or("");
        let excerpt = format!("    {code}\n    {}^", " ".repeat(column.saturating_sub(1)));
        Diagnostic { file, line, column, message, excerpt }
    };
    let module = match naga::front::wgsl::parse_str(&combined) {
        Ok(module) => module,
        Err(e) => return Some(locate(e.location(&combined), e.message().to_string())),
    };
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    if let Err(e) = validator.validate(&module) {
        let message = e.as_inner().to_string();
        let named = e.spans().next().map(|(_, label)| format!("{message} ({label})")).unwrap_or(message);
        return Some(locate(e.location(&combined), named));
    }
    let missing = entries.iter().find(|entry| !module.entry_points.iter().any(|e| e.name == **entry))?;
    Some(locate(None, format!("has no entry point {missing}, which octconv launches")))
}

/// One line of a report and whether it passed.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub passed: bool,
    pub text: String,
}

/// The shipped and the edited kernel of the seed net's dispatches, timed.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    pub kernel: &'static str,
    /// Seconds summed over the seed net's dispatches of this kernel (batch 64, one training step).
    pub shipped: f64,
    pub edited: f64,
    pub clock: Clock,
}

/// What the lab found for one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub file: String,
    pub compile_error: Option<Diagnostic>,
    pub findings: Vec<Finding>,
    pub times: Vec<KernelTime>,
    /// The short training run, when asked for and the checks passed.
    pub training: Option<TrainComparison>,
    pub seconds: f64,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.findings.iter().filter(|f| f.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.findings.iter().filter(|f| !f.passed).count() + self.compile_error.is_some() as usize
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.compile_error {
            writeln!(f, "{error}\n{}: does not compile; the last good version stays in use", self.file)?;
        }
        for finding in self.findings.iter().filter(|f| !f.passed) {
            writeln!(f, "FAIL {}", finding.text)?;
        }
        if let Some(training) = &self.training {
            writeln!(f, "{training}")?;
        }
        for t in &self.times {
            let ratio = t.edited / t.shipped;
            writeln!(
                f,
                "time {:<30} shipped {:>8.3} ms, edited {:>8.3} ms: {ratio:.2}× ({}, median)",
                t.kernel,
                t.shipped * 1e3,
                t.edited * 1e3,
                t.clock.name()
            )?;
        }
        write!(f, "{} in {:.1} s: {} passed, {} failed", self.file, self.seconds, self.passed(), self.failed())
    }
}

/// The seed net trained the same way with the shipped and with the edited kernels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainComparison {
    /// (steps done, mean loss of the steps since the previous point) for each.
    pub shipped: Vec<(usize, f64)>,
    pub edited: Vec<(usize, f64)>,
}

impl TrainComparison {
    /// A problem with the edited run's curve: a NaN, or a loss well above the
    /// shipped run's at the end; None when it trains like the shipped kernels.
    pub fn problem(&self) -> Option<String> {
        if let Some((step, loss)) = self.edited.iter().find(|(_, l)| !l.is_finite()) {
            return Some(format!("the loss became {loss} by step {step}: the edited kernels do not train"));
        }
        let (Some(&(steps, edited)), Some(&(_, shipped))) = (self.edited.last(), self.shipped.last()) else {
            return Some("no training step ran".into());
        };
        // Rounding differs between kernels, so the curves part a little; a loss
        // half as large again as the shipped run's, past chance level, is a divergence.
        (edited > 1.5 * shipped && edited > 0.3).then(|| {
            format!("after {steps} steps the loss is {edited:.4}, the shipped kernels' {shipped:.4}: training diverges")
        })
    }
}

impl fmt::Display for TrainComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "train {:>6} {:>10} {:>10}", "step", "shipped", "edited")?;
        for (&(step, shipped), &(_, edited)) in self.shipped.iter().zip(&self.edited) {
            write!(f, "\ntrain {step:>6} {shipped:>10.4} {edited:>10.4}")?;
        }
        Ok(())
    }
}

/// The families a file's kernels belong to (every family for common.wgsl).
pub fn families_of(name: &str) -> Vec<&'static Family> {
    FAMILIES.into_iter().filter(|f| name == COMMON.name || f.shaders.iter().any(|s| s.name == name)).collect()
}

/// The shipped file called `name`, if octconv has one.
pub fn shipped_file(name: &str) -> Option<ShaderFile> {
    std::iter::once(COMMON).chain(FAMILIES.iter().flat_map(|f| f.shaders.iter().copied())).find(|s| s.name == name)
}

/// Two devices on one adapter: one runs the shipped kernels, the other the edited ones.
pub struct Lab {
    pub shipped: Rc<Gpu>,
    pub edited: Rc<Gpu>,
    /// Timed repetitions per kernel (the median is reported).
    pub repeats: usize,
    /// The text in use on the edited device, per file.
    in_use: HashMap<&'static str, String>,
}

impl Lab {
    pub async fn open(choice: &AdapterChoice) -> Result<Lab, GpuError> {
        let mut edited = Gpu::new(choice).await?;
        // A kernel that never returns is reported, not waited for.
        edited.wait_limit = Some(std::time::Duration::from_secs(20));
        let shipped = Rc::new(Gpu::new(choice).await?);
        Ok(Lab { shipped, edited: Rc::new(edited), repeats: 5, in_use: HashMap::new() })
    }

    /// Whether `text` differs from what the edited device uses for file `name`.
    pub fn changed(&self, name: &str, text: &str) -> bool {
        let current = self.in_use.get(name).map(String::as_str).or(shipped_file(name).map(|s| s.source));
        current != Some(text)
    }

    /// The file `name` is gone: the edited device uses the shipped one again.
    pub fn forget(&mut self, name: &str) {
        if let Some(file) = shipped_file(name) {
            self.in_use.remove(file.name);
            self.edited.set_source(file.name, None);
        }
    }

    /// Compiles `text` as the file `name` and, when it compiles, checks and times its families' kernels.
    pub async fn check(&mut self, name: &str, text: &str) -> Report {
        let started = std::time::Instant::now();
        let mut report = Report { file: name.to_string(), ..Report::default() };
        let Some(file) = shipped_file(name) else {
            report
                .findings
                .push(Finding { passed: false, text: format!("{name} is not one of octconv's shader files") });
            return report;
        };
        let families = families_of(name);
        if let Some(error) = self.compile_error(file, text, &families) {
            report.compile_error = Some(error);
            report.seconds = started.elapsed().as_secs_f64();
            return report;
        }
        self.use_text(file.name, text);
        for family in &families {
            report.findings.extend(self.kernel_checks(family).await);
            report.findings.extend(self.gradient_checks(family).await);
        }
        if report.failed() == 0 {
            report.times = self.times(&families).await;
        }
        report.seconds = started.elapsed().as_secs_f64();
        report
    }

    /// Makes the edited device use `text` for the file `name` (without checking it).
    fn use_text(&mut self, name: &str, text: &str) {
        if let Some(file) = shipped_file(name) {
            self.edited.set_source(file.name, Some(text.to_string()));
            self.in_use.insert(file.name, text.to_string());
        }
    }

    /// After `check` found nothing wrong: `steps` training steps with the
    /// edited kernels beside the shipped ones (see `train_compare`), a
    /// finding that fails on a NaN or a divergence.
    pub async fn train_check(&self, report: &mut Report, data: &Dataset, steps: usize) {
        if report.failed() > 0 || steps == 0 {
            return;
        }
        let started = std::time::Instant::now();
        let finding = match self.train_compare(data, steps, (steps / 10).max(1)).await {
            Ok(comparison) => {
                let finding = match comparison.problem() {
                    Some(problem) => Finding { passed: false, text: format!("training {steps} steps: {problem}") },
                    None => Finding { passed: true, text: format!("training {steps} steps: as the shipped kernels") },
                };
                report.training = Some(comparison);
                finding
            }
            Err(e) => Finding { passed: false, text: format!("training {steps} steps: {e}") },
        };
        report.findings.push(finding);
        report.seconds += started.elapsed().as_secs_f64();
    }

    /// `steps` training steps of the seed net (seed 1, batch 64, Adam's
    /// defaults) on `data` with the shipped kernels and with the edited ones,
    /// the mean loss every `every` steps.
    pub async fn train_compare(
        &self,
        data: &Dataset,
        steps: usize,
        every: usize,
    ) -> Result<TrainComparison, ExecError> {
        let net = SeedNet::new();
        let params = ParamSet::init(&net.params(), 1);
        let mut curves = Vec::new();
        for gpu in [&self.shipped, &self.edited] {
            let model = net.graph(64, true)?;
            let mut runner = exec::compile(&Device::Gpu(gpu.clone()), model, &params, AdamConfig::default()).await?;
            let on_device = runner.upload_dataset(data).await?;
            runner.set_order(on_device, &epoch_order(data.len(), 1, 0))?;
            let mut curve = Vec::new();
            for step in 0..steps {
                runner.select_batch(on_device, step * 64 % data.len().max(1));
                runner.train_step();
                if (step + 1) % every.max(1) == 0 || step + 1 == steps {
                    curve.push((step + 1, runner.metrics().await?.loss()));
                    runner.reset_metrics();
                }
            }
            curves.push(curve);
        }
        let edited = curves.pop().unwrap_or_default();
        Ok(TrainComparison { shipped: curves.pop().unwrap_or_default(), edited })
    }

    /// Why `text` as the file `file` would not compile: for common.wgsl,
    /// before each kernel file in use; for a kernel file, after the
    /// common.wgsl in use.
    fn compile_error(&self, file: ShaderFile, text: &str, families: &[&Family]) -> Option<Diagnostic> {
        let in_use = |f: ShaderFile| self.in_use.get(f.name).cloned().unwrap_or_else(|| f.source.to_string());
        let entries = |f: ShaderFile| -> Vec<&str> {
            families.iter().flat_map(|fam| fam.kernels.iter()).filter(|k| k.shader == f).map(|k| k.entry).collect()
        };
        if file == COMMON {
            let kernel_files = families.iter().flat_map(|f| f.shaders.iter().copied());
            return kernel_files.into_iter().find_map(|f| diagnose_with(text, f.name, &in_use(f), &entries(f)));
        }
        diagnose_with(&in_use(COMMON), file.name, text, &entries(file))
    }

    /// The family's check cases on the edited kernels, against the CPU twins.
    async fn kernel_checks(&self, family: &Family) -> Vec<Finding> {
        let mut findings = Vec::new();
        for case in check::cases().into_iter().filter(|c| c.family == family.name) {
            let label = format!("{} ({}, {} tiling) {}", case.kernel, case.op, case.tiling.name(), case.shape);
            let finding = match check::run_case(&self.edited, &case).await {
                Ok(o) if o.passed => Finding { passed: true, text: label },
                Ok(o) => {
                    let (i, expected, got) = o.first_wrong.unwrap_or((0, f32::NAN, f32::NAN));
                    let text = format!(
                        "{label}: max abs error {:.3e}, max rel {:.3e}; first wrong element {i}: expected {expected}, got {got}",
                        o.max_abs, o.max_rel
                    );
                    Finding { passed: false, text }
                }
                Err(e) => Finding { passed: false, text: format!("{label}: {e}") },
            };
            findings.push(finding);
        }
        findings
    }

    /// The family's gradient rules run on the edited kernels, against central
    /// differences of the edited forward kernel.
    async fn gradient_checks(&self, family: &Family) -> Vec<Finding> {
        let mut findings = Vec::new();
        for case in (family.gradients)(&mut Seeds::new(500)) {
            let shapes: Vec<String> = case.inputs.iter().map(|t| format!("{:?}", t.shape)).collect();
            let label = format!("gradient of {} at {} against finite differences", case.op.name(), shapes.join(" "));
            let finding = match gpu_gradient_check(&self.edited, &case).await {
                Ok(None) => Finding { passed: true, text: label },
                Ok(Some(why)) => Finding { passed: false, text: format!("{label}: {why}") },
                Err(e) => Finding { passed: false, text: format!("{label}: {e}") },
            };
            findings.push(finding);
        }
        findings
    }

    /// The families' kernels at the seed net's shapes (one training step at batch 64), shipped against edited.
    async fn times(&self, families: &[&Family]) -> Vec<KernelTime> {
        let Ok(model) = SeedNet::new().graph(64, true) else { return Vec::new() };
        let g = &model.graph;
        let mut times: Vec<KernelTime> = Vec::new();
        for node in &g.nodes {
            let Source::Op(op) = &node.source else { continue };
            let shapes: Vec<&[usize]> = node.inputs.iter().map(|&i| g.shape(i)).collect();
            let Some(launch) = op.launch(&shapes, &node.shape, self.edited.tiling) else { continue };
            if !families.iter().any(|f| f.kernels.contains(&launch.kernel)) {
                continue;
            }
            let mut seconds = [0.0; 2];
            let mut clock_used = Clock::Wall;
            for (k, gpu) in [&*self.shipped, &*self.edited].into_iter().enumerate() {
                let Ok(buffers) =
                    shapes.iter().map(|s| gpu.upload(&Tensor::uniform(s, -1.0, 1.0, 7))).collect::<Result<Vec<_>, _>>()
                else {
                    return times;
                };
                let output = gpu.storage_buffer(node.shape.iter().product(), "output");
                let inputs: Vec<&wgpu::Buffer> = buffers.iter().map(|b| &b.buffer).collect();
                match gpu.time_dispatch(&launch, &launch.buffers(&inputs, &output), self.repeats).await {
                    Ok((s, clock)) => (seconds[k], clock_used) = (s, clock),
                    Err(_) => return times,
                }
            }
            match times.iter_mut().find(|t| t.kernel == launch.kernel.entry) {
                Some(t) => (t.shipped, t.edited) = (t.shipped + seconds[0], t.edited + seconds[1]),
                None => times.push(KernelTime {
                    kernel: launch.kernel.entry,
                    shipped: seconds[0],
                    edited: seconds[1],
                    clock: clock_used,
                }),
            }
        }
        times
    }
}

/// The gradient rule of `case` evaluated with the GPU kernels (forward and
/// backward), against central differences of the GPU forward at up to 8
/// elements per input; None when every one is within the case's tolerance.
async fn gpu_gradient_check(gpu: &Gpu, case: &GradientCase) -> Result<Option<String>, GpuError> {
    let GradientCase { op, inputs, differentiable, step, tolerance: [abs, rel] } = case;
    let mut g = Graph::new();
    let ids: Vec<usize> = inputs
        .iter()
        .zip(differentiable)
        .enumerate()
        .map(|(k, (t, &d))| if d { g.param(&format!("x{k}"), &t.shape) } else { g.input(&format!("x{k}"), &t.shape) })
        .collect();
    let y = g
        .apply("y", op.clone(), &ids)
        .map_err(|e| GpuError::Validation { context: op.name().into(), message: e.to_string() })?;
    let shape = g.shape(y).to_vec();
    let dy = g.input("dy", &shape);
    let grads = g
        .backward_with(y, dy)
        .map_err(|e| GpuError::Validation { context: op.name().into(), message: e.to_string() })?;
    let r = if matches!(op, Op::CrossEntropy(_)) {
        Tensor::new(&[1], vec![1.0])
    } else {
        Tensor::uniform(&shape, -1.0, 1.0, 99)
    };

    // Every node on the GPU, in order.
    let mut values: Vec<Option<GpuTensor>> = (0..g.nodes.len()).map(|_| None).collect();
    for (&id, t) in ids.iter().zip(inputs) {
        values[id] = Some(gpu.upload(t)?);
    }
    values[dy] = Some(gpu.upload(&r)?);
    for (id, node) in g.nodes.iter().enumerate() {
        if let Source::Op(node_op) = &node.source {
            let args: Vec<&GpuTensor> =
                node.inputs.iter().map(|&i| values[i].as_ref().expect("computed before")).collect();
            values[id] = Some(gpu.run(node_op, &args).await?);
        }
    }
    let loss = async |xs: &[Tensor]| -> Result<f64, GpuError> {
        let uploaded = xs.iter().map(|t| gpu.upload(t)).collect::<Result<Vec<_>, _>>()?;
        let out = gpu.read(&gpu.run(op, &uploaded.iter().collect::<Vec<_>>()).await?).await?;
        Ok(out.data.iter().zip(&r.data).map(|(&a, &b)| a as f64 * b as f64).sum())
    };
    for &(param, grad) in &grads {
        let which = ids.iter().position(|&id| id == param).expect("a parameter of the graph");
        let rule = gpu.read(values[grad].as_ref().expect("computed")).await?;
        let count = inputs[which].len();
        for i in (0..count).step_by((count / 8).max(1)) {
            let (mut plus, mut minus) = (inputs.clone(), inputs.clone());
            plus[which].data[i] += step;
            minus[which].data[i] -= step;
            let fd = (loss(&plus).await? - loss(&minus).await?) / (2.0 * *step as f64);
            let a = rule.data[i] as f64;
            if (fd - a).abs() > abs + rel * a.abs() {
                return Ok(Some(format!(
                    "element {i} of input {which}: finite difference {fd:.6}, the kernels give {a:.6}"
                )));
            }
        }
    }
    Ok(None)
}
