//! Softmax cross-entropy (mean over the batch) and argmax.

use crate::tensor::Tensor;

/// log Σ_k exp(z_k), computed stably around the maximum.
fn log_sum_exp(row: &[f32]) -> f32 {
    let largest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    largest + row.iter().map(|&z| (z - largest).exp()).sum::<f32>().ln()
}

/// mean_n (log Σ_k exp z[n,k] − z[n, label_n])
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> f32 {
    let classes = logits.shape[1];
    let total: f32 = logits
        .data
        .chunks(classes)
        .zip(&labels.data)
        .map(|(row, &label)| log_sum_exp(row) - row[label as usize])
        .sum();
    total / labels.len() as f32
}

/// dz[n,k] = (softmax(z[n])[k] − [k = label_n]) / N
pub fn cross_entropy_backward(logits: &Tensor, labels: &Tensor) -> Vec<f32> {
    let classes = logits.shape[1];
    let batch = labels.len() as f32;
    let mut dz = Vec::with_capacity(logits.len());
    for (row, &label) in logits.data.chunks(classes).zip(&labels.data) {
        let lse = log_sum_exp(row);
        for (k, &z) in row.iter().enumerate() {
            let onehot = if k == label as usize { 1.0 } else { 0.0 };
            dz.push(((z - lse).exp() - onehot) / batch);
        }
    }
    dz
}

/// Index of each row's maximum (the first on ties), as f32.
pub fn argmax(x: &Tensor) -> Vec<f32> {
    let cols = x.shape[1];
    x.data
        .chunks(cols)
        .map(|row| (1..cols).fold(0, |best, k| if row[k] > row[best] { k } else { best }) as f32)
        .collect()
}
