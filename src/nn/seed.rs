//! The seed's Octave MNIST network, with the reference PyTorch module's names:
//!
//! conv1 = OctaveConv(1 → 16, alpha 0 → 0.5)   → H 8×28×28, L 8×14×14
//! max-pool 2 + relu on both branches
//! conv2 = OctaveConv(16 → 32, alpha 0.5 → 0.5) → H 16×14×14, L 16×7×7
//! conv3 = OctaveConv(32 → 64, alpha 0.5 → 0)   → 64×14×14
//! relu, max-pool 2, flatten 3136 → fc1 256 → fc2 10
//!
//! (No activation between conv2 and conv3 nor after fc1, as in the seed.)

use super::{Branches, ConvLowering, Linear, OctaveConv, ParamSpec};
use crate::graph::{Graph, GraphError, NodeId};
use crate::ops::{CrossEntropy, MaxPool2, Relu, Reshape};

/// Side of the square input image.
pub const IMAGE_SIDE: usize = 28;
pub const CLASSES: usize = 10;

/// The seed's share of low-frequency channels inside the network.
pub const SEED_ALPHA: f64 = 0.5;

#[derive(Clone, Debug)]
pub struct SeedNet {
    /// The low-frequency share inside the network (0: the plain CNN).
    pub alpha: f64,
    pub conv1: OctaveConv,
    pub conv2: OctaveConv,
    pub conv3: OctaveConv,
    pub fc1: Linear,
    pub fc2: Linear,
}

/// A model's graph with the nodes a runner needs to find.
#[derive(Clone, Debug)]
pub struct TrainGraph {
    pub graph: Graph,
    /// [batch, 1, 28, 28] pixels in [0, 1].
    pub images: NodeId,
    /// [batch] class indices; −1 marks a padding row.
    pub labels: NodeId,
    pub logits: NodeId,
    pub loss: NodeId,
    /// (parameter, its gradient), empty for an inference-only graph.
    pub grads: Vec<(NodeId, NodeId)>,
    /// Named feature maps kept for display: conv1/conv2, high and low.
    pub features: Vec<(String, NodeId)>,
}

impl TrainGraph {
    pub fn batch(&self) -> usize {
        self.graph.shape(self.images)[0]
    }

    /// Values per example of the images input (1 × 28 × 28 for the seed net).
    pub fn sample_len(&self) -> usize {
        self.graph.shape(self.images)[1..].iter().product()
    }
}

impl Default for SeedNet {
    fn default() -> Self {
        Self::new()
    }
}

impl SeedNet {
    pub fn new() -> Self {
        Self::with_alpha(SEED_ALPHA)
    }

    /// The seed architecture with low-frequency share `alpha` inside the
    /// network (conv1: 0 → alpha, conv2: alpha → alpha, conv3: alpha → 0),
    /// the layers keeping their channel counts: alpha 0 is the plain CNN.
    /// The seed uses 0.5. Panics outside [0, 1) (see `checked_alpha`).
    pub fn with_alpha(alpha: f64) -> Self {
        let alpha = checked_alpha(alpha).expect("alpha in [0, 1)");
        let conv = |name, cin, cout, ain, aout| OctaveConv::new(name, cin, cout, ain, aout, 3, 1, 1).unwrap();
        SeedNet {
            alpha,
            conv1: conv("conv1", 1, 16, 0.0, alpha),
            conv2: conv("conv2", 16, 32, alpha, alpha),
            conv3: conv("conv3", 32, 64, alpha, 0.0),
            fc1: Linear::new("fc1", 64 * 7 * 7, 256),
            fc2: Linear::new("fc2", 256, CLASSES),
        }
    }

    /// Multiply-accumulates of one image's forward pass: every conv path and both linear layers.
    pub fn forward_macs(&self) -> u64 {
        // conv1 sees 28×28; conv2 and conv3 see the 14×14 high branch after the max-pool.
        let side = |layer: &OctaveConv| if layer.name == "conv1" { IMAGE_SIDE } else { IMAGE_SIDE / 2 };
        let convs = [&self.conv1, &self.conv2, &self.conv3].into_iter();
        let conv_macs: u64 = convs.flat_map(|l| l.path_costs(side(l), side(l))).map(|c| c.macs).sum();
        conv_macs + [&self.fc1, &self.fc2].iter().map(|fc| (fc.in_features * fc.out_features) as u64).sum::<u64>()
    }

    /// Number of trainable values.
    pub fn param_count(&self) -> u64 {
        self.params().iter().map(|p| p.shape.iter().product::<usize>() as u64).sum()
    }

    /// Every parameter in state_dict order.
    pub fn params(&self) -> Vec<ParamSpec> {
        [self.conv1.params(), self.conv2.params(), self.conv3.params(), self.fc1.params(), self.fc2.params()].concat()
    }

    /// The graph for `batch` images, with the gradient nodes when
    /// `with_gradients`, its convolutions lowered as `lowering` says (a
    /// device's choice: `Device::conv_lowering`).
    pub fn graph(&self, batch: usize, with_gradients: bool, lowering: ConvLowering) -> Result<TrainGraph, GraphError> {
        let lowering = if with_gradients { lowering } else { lowering.without_gradients() };
        let mut g = Graph::new();
        let images = g.input("images", &[batch, 1, IMAGE_SIDE, IMAGE_SIDE]);
        let labels = g.input("labels", &[batch]);

        let c1 = self.conv1.apply(&mut g, Branches { high: Some(images), low: None }, lowering)?;
        let mut features = vec![];
        let mut pooled = Branches { high: None, low: None };
        for (branch, out, label) in [(c1.high, &mut pooled.high, "high"), (c1.low, &mut pooled.low, "low")] {
            let Some(b) = branch else { continue };
            features.push((format!("conv1.{label}"), b));
            let p = g.apply(&format!("pool1.{label}"), MaxPool2, &[b])?;
            *out = Some(g.apply(&format!("relu1.{label}"), Relu, &[p])?);
        }
        let c2 = self.conv2.apply(&mut g, pooled, lowering)?;
        features.extend(c2.high.map(|h| ("conv2.high".to_string(), h)));
        features.extend(c2.low.map(|l| ("conv2.low".to_string(), l)));
        // relu, then the max-pool: as one, with the L→H term added after the pool (exact; see apply_relu_pool).
        let c3 = self.conv3.apply_relu_pool(&mut g, c2, lowering)?;
        let p = c3.high.expect("conv3 has a high-frequency output");
        let flat_len = g.shape(p)[1..].iter().product();
        let flat = g.apply("flatten", Reshape { shape: vec![batch, flat_len] }, &[p])?;
        let h = self.fc1.apply(&mut g, flat)?;
        let logits = self.fc2.apply(&mut g, h)?;
        let loss = g.apply("loss", CrossEntropy, &[logits, labels])?;
        let grads = if with_gradients { g.backward(loss)? } else { vec![] };
        Ok(TrainGraph { graph: g, images, labels, logits, loss, grads, features })
    }
}

/// `alpha` if a net can be built with it: 0 (the plain CNN) up to, not
/// including, 1 (the high branch needs channels); else one sentence.
pub fn checked_alpha(alpha: f64) -> Result<f64, String> {
    if (0.0..1.0).contains(&alpha) {
        Ok(alpha)
    } else {
        Err(format!(
            "alpha must be at least 0 and below 1 (0 is the plain CNN, the seed uses {SEED_ALPHA}), got {alpha}"
        ))
    }
}
