//! Training and evaluation loops over a compiled program, shared by the
//! command line and the web page. Nothing here blocks: every read-back is awaited.

use crate::data::epoch_order;
use crate::exec::{DeviceData, ExecError, Metrics, Program};
use crate::ops::loss::argmax;

/// The seed recipe's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub seed: u64,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe { epochs: 3, batch: 64, lr: 1e-3, seed: 1 }
    }
}

/// One epoch's summary.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
}

/// Where training stands in its data: the epoch (0-based), its seeded order
/// and the position in it. The CLI's epochs and the page's step-by-step
/// training both walk the data with it, so both see the same batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochCursor {
    pub data: DeviceData,
    pub seed: u64,
    pub epoch: usize,
    /// Examples of this epoch already trained on.
    pub position: usize,
}

impl EpochCursor {
    /// Starts epoch `epoch`: writes its order to the device and resets the metrics.
    pub fn start(runner: &mut dyn Program, data: DeviceData, seed: u64, epoch: usize) -> Result<Self, ExecError> {
        runner.set_order(data, &epoch_order(data.len, seed, epoch))?;
        runner.reset_metrics();
        Ok(EpochCursor { data, seed, epoch, position: 0 })
    }

    pub fn epoch_done(&self) -> bool {
        self.position >= self.data.len
    }

    /// Trains on up to `max_steps` next batches (fewer at the end of the
    /// epoch), recorded together (`Program::train_steps`); returns how many
    /// examples they held.
    pub fn steps(&mut self, runner: &mut dyn Program, max_steps: usize) -> usize {
        let batch = runner.model().batch();
        let steps = (self.data.len - self.position).div_ceil(batch).min(max_steps);
        runner.train_steps(self.data, self.position, steps);
        let end = (self.position + steps * batch).min(self.data.len);
        let examples = end - self.position;
        self.position = end;
        examples
    }

    /// The cursor at the start of the next epoch.
    pub fn next_epoch(&self, runner: &mut dyn Program) -> Result<Self, ExecError> {
        EpochCursor::start(runner, self.data, self.seed, self.epoch + 1)
    }
}

/// Walks `data` in its own order, one batch after another, calling `each` after
/// every forward pass with the number of examples in that batch.
async fn forward_in_order<F>(runner: &mut dyn Program, data: DeviceData, mut each: F) -> Result<(), ExecError>
where
    F: AsyncFnMut(&mut dyn Program, usize) -> Result<(), ExecError>,
{
    let batch = runner.model().batch();
    runner.set_order(data, &(0..data.len).collect::<Vec<_>>())?;
    for first in (0..data.len).step_by(batch) {
        runner.select_batch(data, first);
        runner.forward();
        each(runner, batch.min(data.len - first)).await?;
    }
    Ok(())
}

/// Wall seconds per training step of `steps` steps run back to back from the
/// start of `data`'s order (as an epoch runs them), with one wait at the end.
pub async fn seconds_per_step(runner: &mut dyn Program, data: DeviceData, steps: usize) -> Result<f64, ExecError> {
    let start = crate::exec::now();
    runner.train_steps(data, 0, steps);
    runner.metrics().await?; // waits for the device
    Ok((crate::exec::now() - start) / steps as f64)
}

/// Evaluates every example of `data` in batches; the last batch is padded.
pub async fn evaluate(runner: &mut dyn Program, data: DeviceData) -> Result<Metrics, ExecError> {
    runner.reset_metrics();
    forward_in_order(runner, data, async |_, _| Ok(())).await?;
    runner.metrics().await
}

/// The predicted class of every example of `data`, in order.
pub async fn predictions(runner: &mut dyn Program, data: DeviceData) -> Result<Vec<usize>, ExecError> {
    let mut predicted = Vec::with_capacity(data.len);
    forward_in_order(runner, data, async |runner, rows| {
        let logits = runner.read(runner.model().logits).await?;
        predicted.extend(argmax(&logits).iter().take(rows).map(|&c| c as usize));
        Ok(())
    })
    .await?;
    Ok(predicted)
}

/// Trains epoch `epoch` on `data` (already on the runner's device), calling
/// `progress(samples done, running metrics)` every `report_every` steps and at
/// the end (the only read-backs); returns the epoch's metrics. An epoch whose
/// running loss stops being a finite number ends at that report: the caller
/// finds the NaN in the metrics, and no more steps are spent on it.
pub async fn train_epoch(
    runner: &mut dyn Program,
    data: DeviceData,
    seed: u64,
    epoch: usize,
    report_every: usize,
    mut progress: impl FnMut(usize, Metrics),
) -> Result<Metrics, ExecError> {
    let mut cursor = EpochCursor::start(runner, data, seed, epoch)?;
    let report_every = report_every.max(1);
    while !cursor.epoch_done() {
        cursor.steps(runner, report_every);
        let metrics = runner.metrics().await?;
        progress(cursor.position, metrics);
        if !metrics.loss().is_finite() {
            return Ok(metrics);
        }
    }
    runner.metrics().await
}

/// Softmax of each row of `logits` [rows, classes].
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(classes) {
        let largest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = row.iter().map(|z| (z - largest).exp()).collect();
        let total: f32 = exps.iter().sum();
        out.extend(exps.iter().map(|e| e / total));
    }
    out
}
