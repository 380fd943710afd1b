//! Softmax cross-entropy (mean over the batch) and argmax. A negative label
//! marks a padding row, which the loss, its gradient and the metrics ignore.

use crate::tensor::Tensor;

/// log Σ_k exp(z_k), computed stably around the maximum.
fn log_sum_exp(row: &[f32]) -> f32 {
    let largest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    largest + row.iter().map(|&z| (z - largest).exp()).sum::<f32>().ln()
}

/// Rows that carry a label, at least 1 (an all-padding batch has loss 0).
fn labelled_rows(labels: &Tensor) -> f32 {
    labels.data.iter().filter(|&&l| l >= 0.0).count().max(1) as f32
}

/// mean over labelled rows of (log Σ_k exp z[n,k] − z[n, label_n])
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> f32 {
    let classes = logits.shape[1];
    let total: f32 = logits
        .data
        .chunks(classes)
        .zip(&labels.data)
        .filter(|(_, &label)| label >= 0.0)
        .map(|(row, &label)| log_sum_exp(row) - row[label as usize])
        .sum();
    total / labelled_rows(labels)
}

/// dz[n,k] = (softmax(z[n])[k] − [k = label_n]) / labelled rows, 0 on padding rows
pub fn cross_entropy_backward(logits: &Tensor, labels: &Tensor) -> Vec<f32> {
    let classes = logits.shape[1];
    let batch = labelled_rows(labels);
    let mut dz = Vec::with_capacity(logits.len());
    for (row, &label) in logits.data.chunks(classes).zip(&labels.data) {
        if label < 0.0 {
            dz.extend(std::iter::repeat_n(0.0, classes));
            continue;
        }
        let lse = log_sum_exp(row);
        for (k, &z) in row.iter().enumerate() {
            let onehot = if k == label as usize { 1.0 } else { 0.0 };
            dz.push(((z - lse).exp() - onehot) / batch);
        }
    }
    dz
}

fn row_argmax(row: &[f32]) -> usize {
    (1..row.len()).fold(0, |best, k| if row[k] > row[best] { k } else { best })
}

/// Index of each row's maximum (the first on ties), as f32.
pub fn argmax(x: &Tensor) -> Vec<f32> {
    x.data.chunks(x.shape[1]).map(|row| row_argmax(row) as f32).collect()
}

/// metrics += (loss · labelled rows, rows whose argmax is the label, labelled rows)
pub fn batch_metrics(logits: &Tensor, labels: &Tensor, loss: f32, metrics: &mut [f32; 3]) {
    let mut correct = 0;
    let mut labelled = 0;
    for (row, &label) in logits.data.chunks(logits.shape[1]).zip(&labels.data) {
        if label >= 0.0 {
            labelled += 1;
            correct += (row_argmax(row) == label as usize) as usize;
        }
    }
    metrics[0] += loss * labelled as f32;
    metrics[1] += correct as f32;
    metrics[2] += labelled as f32;
}
