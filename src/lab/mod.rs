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
//!    (medians, from GPU timestamps where the device has them, else the wall
//!    clock, labelled either way).
//!
//! A file that does not compile leaves the last good version in use.

mod gradient;
mod sweep;
mod training;

#[cfg(not(target_arch = "wasm32"))]
pub use crate::gpu::diagnose;
pub use crate::gpu::Diagnostic;
pub use sweep::{sweep_specs, with_constant, Sweep, SweepSpec, Variant};
pub use training::TrainComparison;

#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::diagnose_with;
use gradient::gpu_gradient_check;

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::check;
use crate::data::PIXELS;
use crate::data::{epoch_order, Dataset};
use crate::exec::{self, Device, ExecError};
use crate::gpu::{AdapterChoice, Clock, Gpu, GpuError};
use crate::graph::Source;
use crate::nn::ParamSet;
use crate::nn::{ConvLowering, SeedNet};
use crate::ops::adam::adam_launch;
use crate::ops::cases::{Buffer, Seeds};
use crate::ops::gather::gather_launch;
use crate::ops::kernel::{ShaderFile, COMMON};
use crate::ops::{Family, FAMILIES};
use crate::ops::{Launch, Tiling};
use crate::optim::AdamConfig;
use crate::tensor::Tensor;

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
        // A kernel that never returns is reported, not waited for (natively:
        // the browser has its own watchdog).
        #[cfg(not(target_arch = "wasm32"))]
        {
            edited.wait_limit = Some(std::time::Duration::from_secs(20));
        }
        let mut shipped = Gpu::new(choice).await?;
        // Edited kernels keep naga's run-time checks; time the shipped ones with them too.
        (edited.trust_shipped, shipped.trust_shipped) = (false, false);
        Ok(Lab { shipped: Rc::new(shipped), edited: Rc::new(edited), repeats: 5, in_use: HashMap::new() })
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
        let mut report = self.check_without_times(name, text).await;
        if report.failed() == 0 {
            let started = exec::now();
            report.times = self.time(name).await;
            report.seconds += exec::now() - started;
        }
        report
    }

    /// Compiles `text` as the file `name` and, when it compiles, uses it and
    /// checks its families' kernels against the twins and finite differences.
    pub async fn check_without_times(&mut self, name: &str, text: &str) -> Report {
        let started = exec::now();
        let mut report = Report { file: name.to_string(), ..Report::default() };
        let Some(file) = shipped_file(name) else {
            report
                .findings
                .push(Finding { passed: false, text: format!("{name} is not one of octconv's shader files") });
            return report;
        };
        let families = families_of(name);
        if let Some(error) = self.compile_error(file, text, &families).await {
            report.compile_error = Some(error);
            report.seconds = exec::now() - started;
            return report;
        }
        self.use_text(file.name, text);
        for family in &families {
            report.findings.extend(self.kernel_checks(family).await);
            report.findings.extend(self.gradient_checks(family).await);
        }
        report.seconds = exec::now() - started;
        report
    }

    /// The kernels of file `name`'s families in use on the edited device
    /// against the shipped ones, at the seed net's shapes.
    pub async fn time(&self, name: &str) -> Vec<KernelTime> {
        self.times(&families_of(name)).await
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
        let started = exec::now();
        let finding = match self.train_compare(data, steps).await {
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
        report.seconds += exec::now() - started;
    }

    /// `steps` training steps of the seed net (seed 1, batch 64, Adam's
    /// defaults) on `data` with the shipped kernels and with the edited ones,
    /// the mean loss over each tenth of the run.
    pub async fn train_compare(&self, data: &Dataset, steps: usize) -> Result<TrainComparison, ExecError> {
        let every = (steps / 10).max(1);
        let net = SeedNet::new();
        let params = ParamSet::init(&net.params(), 1);
        let mut curves = Vec::new();
        for gpu in [&self.shipped, &self.edited] {
            let device = Device::Gpu(gpu.clone());
            let model = net.graph(64, true, device.conv_lowering())?;
            let mut runner = exec::compile(&device, model, &params, AdamConfig::default()).await?;
            let on_device = runner.upload_dataset(data).await?;
            runner.set_order(on_device, &epoch_order(data.len(), 1, 0))?;
            let mut curve = Vec::new();
            for step in 0..steps {
                runner.select_batch(on_device, step * 64 % data.len().max(1));
                runner.train_step();
                if (step + 1) % every == 0 || step + 1 == steps {
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
    pub async fn compile_error(&self, file: ShaderFile, text: &str, families: &[&Family]) -> Option<Diagnostic> {
        let in_use = |f: ShaderFile| self.in_use.get(f.name).cloned().unwrap_or_else(|| f.source.to_string());
        if file == COMMON {
            for kernel_file in families.iter().flat_map(|f| f.shaders.iter().copied()) {
                if let Some(error) = self.diagnose(text, kernel_file, &in_use(kernel_file), families).await {
                    return Some(error);
                }
            }
            return None;
        }
        self.diagnose(&in_use(COMMON), file, text, families).await
    }

    /// `text` as the kernel file `file` after `prelude` as common.wgsl: natively
    /// with naga (which also finds a missing entry point), in the browser
    /// with the device's compiler.
    async fn diagnose(&self, prelude: &str, file: ShaderFile, text: &str, families: &[&Family]) -> Option<Diagnostic> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let entries: Vec<&str> =
                families.iter().flat_map(|f| f.kernels.iter()).filter(|k| k.shader == file).map(|k| k.entry).collect();
            diagnose_with(prelude, file.name, text, &entries)
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = families;
            self.edited.diagnose_on_device(prelude, file.name, text).await
        }
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

    /// The families' kernels at the seed net's shapes (one training step at
    /// batch 64: its ops, its Adam update, its batch gather), shipped against edited.
    async fn times(&self, families: &[&Family]) -> Vec<KernelTime> {
        let mut times: Vec<KernelTime> = Vec::new();
        for job in timing_jobs(self.edited.tiling) {
            if !families.iter().any(|f| f.kernels.contains(&job.launch.kernel)) {
                continue;
            }
            let mut seconds = [0.0; 2];
            let mut clock_used = Clock::Wall;
            for (k, gpu) in [&*self.shipped, &*self.edited].into_iter().enumerate() {
                match job.time(gpu, self.repeats).await {
                    Ok((s, clock)) => (seconds[k], clock_used) = (s, clock),
                    Err(_) => return times,
                }
            }
            let kernel = job.launch.kernel.entry;
            match times.iter_mut().find(|t| t.kernel == kernel) {
                Some(t) => (t.shipped, t.edited) = (t.shipped + seconds[0], t.edited + seconds[1]),
                None => times.push(KernelTime { kernel, shipped: seconds[0], edited: seconds[1], clock: clock_used }),
            }
        }
        times
    }
}

/// One dispatch to time: its launch, its buffers' contents, which of them
/// each binding takes, and which to restore before each repeat (in place).
struct TimingJob {
    launch: Launch,
    buffers: Vec<Buffer>,
    bind: Vec<usize>,
    restore: Vec<usize>,
}

/// Every dispatch of one training step of the seed net at batch 64.
fn timing_jobs(tiling: Tiling) -> Vec<TimingJob> {
    let Ok(model) = SeedNet::new().graph(64, true, ConvLowering::for_gpu(tiling)) else { return Vec::new() };
    let g = &model.graph;
    let mut jobs = Vec::new();
    for node in &g.nodes {
        let Source::Op(op) = &node.source else { continue };
        let shapes: Vec<&[usize]> = node.inputs.iter().map(|&i| g.shape(i)).collect();
        let Some(launch) = op.launch(&shapes, &node.shape, tiling) else { continue };
        let mut buffers: Vec<Buffer> =
            shapes.iter().map(|s| Buffer::Floats(Tensor::uniform(s, -1.0, 1.0, 7).data)).collect();
        buffers.push(Buffer::Floats(vec![0.0; node.shape.iter().product()]));
        let indices: Vec<usize> = (0..buffers.len()).collect();
        let bind = launch.buffers(&indices.iter().take(shapes.len()).collect::<Vec<_>>(), &indices[shapes.len()]);
        let bind = bind.into_iter().copied().collect();
        jobs.push(TimingJob { launch, buffers, bind, restore: Vec::new() });
    }
    // Adam over every parameter (it updates parameters and moments in place).
    let count = SeedNet::new().param_count() as usize;
    let values = |seed| Buffer::Floats(Tensor::uniform(&[count], -1.0, 1.0, seed).data);
    let moments = Buffer::Floats(vec![0.0; count]);
    jobs.push(TimingJob {
        launch: adam_launch(&AdamConfig::default(), 1, count),
        buffers: vec![values(1), values(2), moments.clone(), moments],
        bind: vec![0, 1, 2, 3],
        restore: vec![1, 2, 3],
    });
    // The batch gather from a dataset of 640 examples on the device.
    let examples = 640;
    let order: Vec<u32> = (0..examples as u32).collect();
    jobs.push(TimingJob {
        launch: gather_launch(64, PIXELS, 0, examples),
        buffers: vec![
            Buffer::Bytes(bytemuck::cast_slice(&order).to_vec()),
            Buffer::Bytes((0..examples * PIXELS).map(|i| (i % 251) as u8).collect()),
            Buffer::Bytes((0..examples).map(|i| (i % 10) as u8).collect()),
            Buffer::Floats(vec![0.0; 64 * PIXELS]),
            Buffer::Floats(vec![0.0; 64]),
        ],
        bind: vec![0, 1, 2, 3, 4],
        restore: Vec::new(),
    });
    jobs
}

impl TimingJob {
    fn upload(gpu: &Gpu, buffer: &Buffer) -> Result<wgpu::Buffer, GpuError> {
        match buffer {
            Buffer::Floats(values) => Ok(gpu.upload(&Tensor::new(&[values.len()], values.clone()))?.buffer),
            Buffer::Bytes(bytes) => gpu.upload_bytes(bytes, "timing input"),
        }
    }

    async fn time(&self, gpu: &Gpu, repeats: usize) -> Result<(f64, Clock), GpuError> {
        let live = self.buffers.iter().map(|b| Self::upload(gpu, b)).collect::<Result<Vec<_>, _>>()?;
        let pristine =
            self.restore.iter().map(|&k| Self::upload(gpu, &self.buffers[k])).collect::<Result<Vec<_>, _>>()?;
        let restore: Vec<(&wgpu::Buffer, &wgpu::Buffer)> =
            pristine.iter().zip(&self.restore).map(|(from, &k)| (from, &live[k])).collect();
        let bound: Vec<&wgpu::Buffer> = self.bind.iter().map(|&k| &live[k]).collect();
        gpu.time_dispatch(&self.launch, &bound, &restore, repeats).await
    }
}
