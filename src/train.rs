//! Training and evaluation loops over a compiled runner, shared by the
//! command line and the web page. Nothing here blocks: every read-back is awaited.

use crate::data::epoch_order;
use crate::exec::{DeviceData, Metrics, Runner};
use crate::gpu::GpuError;

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

/// Walks `data` in its own order, one batch after another, calling `each` after
/// every forward pass with the number of examples in that batch.
async fn forward_in_order<F>(runner: &mut Runner, data: DeviceData, mut each: F) -> Result<(), GpuError>
where
    F: AsyncFnMut(&mut Runner, usize) -> Result<(), GpuError>,
{
    let batch = runner.model().batch();
    runner.set_order(data, &(0..data.len).collect::<Vec<_>>());
    for first in (0..data.len).step_by(batch) {
        runner.select_batch(data, first);
        runner.forward();
        each(runner, batch.min(data.len - first)).await?;
    }
    Ok(())
}

/// Evaluates every example of `data` in batches; the last batch is padded.
pub async fn evaluate(runner: &mut Runner, data: DeviceData) -> Result<Metrics, GpuError> {
    runner.reset_metrics();
    forward_in_order(runner, data, async |_, _| Ok(())).await?;
    runner.metrics().await
}

/// The predicted class of every example of `data`, in order.
pub async fn predictions(runner: &mut Runner, data: DeviceData) -> Result<Vec<usize>, GpuError> {
    let mut predicted = Vec::with_capacity(data.len);
    forward_in_order(runner, data, async |runner, rows| {
        let logits = runner.read(runner.model().logits).await?;
        predicted.extend(crate::cpu::argmax(&logits).iter().take(rows).map(|&c| c as usize));
        Ok(())
    })
    .await?;
    Ok(predicted)
}

/// Trains one epoch on `data` (already on the runner's device), calling
/// `progress(samples done, running metrics)` every `report_every` steps and at
/// the end (the only read-backs); returns the epoch's metrics.
pub async fn train_epoch(
    runner: &mut Runner,
    data: DeviceData,
    seed: u64,
    epoch: usize,
    report_every: usize,
    mut progress: impl FnMut(usize, Metrics),
) -> Result<Metrics, GpuError> {
    let batch = runner.model().batch();
    let steps = data.len.div_ceil(batch);
    runner.set_order(data, &epoch_order(data.len, seed, epoch));
    runner.reset_metrics();
    for step in 0..steps {
        runner.select_batch(data, step * batch);
        runner.train_step();
        if (step + 1) % report_every == 0 || step + 1 == steps {
            progress(((step + 1) * batch).min(data.len), runner.metrics().await?);
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
