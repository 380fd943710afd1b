//! Training and evaluation loops over a compiled runner, shared by the
//! command line and the web page. Nothing here blocks: every read-back is awaited.

use crate::data::{epoch_order, Dataset};
use crate::exec::{Metrics, Runner};
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

/// Evaluates every example of `data` in batches; the last batch is padded.
pub async fn evaluate(runner: &mut Runner, data: &Dataset) -> Result<Metrics, GpuError> {
    let batch = runner.model().batch();
    let order: Vec<usize> = (0..data.len()).collect();
    runner.reset_metrics();
    for chunk in order.chunks(batch) {
        let (images, labels) = data.batch(chunk, batch);
        runner.write_batch(&images, &labels);
        runner.forward();
    }
    runner.metrics().await
}

/// The predicted class of every example of `data`, in order.
pub async fn predictions(runner: &mut Runner, data: &Dataset) -> Result<Vec<usize>, GpuError> {
    let batch = runner.model().batch();
    let order: Vec<usize> = (0..data.len()).collect();
    let mut predicted = Vec::with_capacity(data.len());
    for chunk in order.chunks(batch) {
        let (images, labels) = data.batch(chunk, batch);
        runner.write_batch(&images, &labels);
        runner.forward();
        let logits = runner.read(runner.model().logits).await?;
        predicted.extend(crate::cpu::argmax(&logits).iter().take(chunk.len()).map(|&c| c as usize));
    }
    Ok(predicted)
}

/// Trains one epoch, calling `progress(samples done, running metrics)` every
/// `report_every` steps and at the end (the only read-backs); returns the epoch's metrics.
pub async fn train_epoch(
    runner: &mut Runner,
    data: &Dataset,
    seed: u64,
    epoch: usize,
    report_every: usize,
    mut progress: impl FnMut(usize, Metrics),
) -> Result<Metrics, GpuError> {
    let batch = runner.model().batch();
    let order = epoch_order(data.len(), seed, epoch);
    let steps = order.len().div_ceil(batch);
    runner.reset_metrics();
    let mut done = 0;
    for (step, chunk) in order.chunks(batch).enumerate() {
        let (images, labels) = data.batch(chunk, batch);
        runner.write_batch(&images, &labels);
        runner.train_step();
        done += chunk.len();
        if (step + 1) % report_every == 0 || step + 1 == steps {
            progress(done, runner.metrics().await?);
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
