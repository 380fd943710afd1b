//! Octave convolution (Chen et al. 2019): the channels are split into a
//! full-resolution high-frequency branch and a half-resolution low-frequency
//! branch, with up to four convolution paths between them:
//!
//!   Y_H = conv_H→H(X_H) + upsample2(conv_L→H(X_L))
//!   Y_L = conv_L→L(X_L) + conv_H→L(avgpool2(X_H))
//!
//! The upsample and its add run as one op (`AddUpsampled2`), so the
//! full-resolution upsampled copy of the L→H result is never written.
//!
//! A path exists only when both its channel counts are non-zero, which gives
//! the four cases of the reference code: general, first layer (alpha_in = 0),
//! last layer (alpha_out = 0) and plain convolution.

use super::ParamSpec;
use crate::graph::{Graph, GraphError, NodeId};
use crate::ops;
use crate::ops::{winograd, Tiling};

/// How a layer's convolutions become graph ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvLowering {
    /// One `Conv2d` op each: shift kernels or im2col + GEMM on the CPU
    /// device, an implicit GEMM on a hardware GPU.
    Direct,
    /// Winograd F(2×2, 3×3) where `ops::winograd::applies` (3×3, stride 1,
    /// padding 1, enough channels), else direct: 16 multiply-adds per tile
    /// and channel pair instead of 36, for compute-bound software GPUs. The
    /// direct ones are `Conv2d::for_register_kernels` (conv1's weight
    /// gradient as batched products).
    Winograd,
    /// Winograd for a graph without gradients: a convolution Winograd suits
    /// but whose transformed tensors would not fit a storage binding (conv3
    /// at a batch of 1000) runs as `Im2col` and one product per image
    /// (`ColumnsProduct`, 32×16 tiles on llvmpipe) where the columns fit,
    /// instead of direct. The column ops have no gradient rules.
    WinogradInference,
}

impl ConvLowering {
    /// The lowering for a GPU whose heavy kernels are tiled as `tiling` says:
    /// Winograd where they are register-blocked (software drivers, or a GPU
    /// `octconv tune` found faster that way: compute bound), else direct.
    pub fn for_gpu(tiling: Tiling) -> Self {
        match tiling {
            Tiling::Registers | Tiling::WideRegisters => ConvLowering::Winograd,
            Tiling::Workgroup => ConvLowering::Direct,
        }
    }

    /// The lowering for a graph that is never differentiated (inference).
    pub fn without_gradients(self) -> Self {
        match self {
            ConvLowering::Winograd => ConvLowering::WinogradInference,
            other => other,
        }
    }
}

/// y = conv(x, weight) + bias of a same-size convolution (one `winograd::suits`)
/// as `im2col` and one product per image, the result named `prefix` as the
/// `Conv2d` it stands for.
fn columns_conv(
    g: &mut Graph,
    prefix: &str,
    im2col: ops::Im2col,
    [x, weight, bias]: [NodeId; 3],
) -> Result<NodeId, GraphError> {
    let columns = g.apply(&format!("{prefix}.columns"), im2col, &[x])?;
    let product = g.apply(&format!("{prefix}.columns_product"), ops::ColumnsProduct, &[columns, weight, bias])?;
    let (x_shape, out_channels) = (g.shape(x), g.shape(weight)[0]);
    g.apply(prefix, ops::Reshape { shape: vec![x_shape[0], out_channels, x_shape[2], x_shape[3]] }, &[product])
}

/// The (high, low) frequency branches of a feature map; a branch with no channels is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Branches {
    pub high: Option<NodeId>,
    pub low: Option<NodeId>,
}

/// A layer's convolution results before they are summed into its outputs.
struct Terms {
    /// At the high resolution (H→H).
    to_high: Vec<NodeId>,
    /// L→H at the low resolution, with its path's node prefix.
    low_to_high: Option<(String, NodeId)>,
    /// At the low resolution (L→L, H→L).
    to_low: Vec<NodeId>,
}

#[derive(Clone, Debug)]
pub struct OctaveConv {
    pub name: String,
    pub in_high: usize,
    pub in_low: usize,
    pub out_high: usize,
    pub out_low: usize,
    pub kernel: usize,
    pub padding: usize,
    /// 1, or 2 for an average pool of both branches before the convolutions.
    pub stride: usize,
}

/// The cost of one convolution path.
#[derive(Clone, Debug, PartialEq)]
pub struct PathCost {
    pub name: String,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Output pixels per image.
    pub pixels: usize,
    /// Multiply-accumulates per image.
    pub macs: u64,
    pub params: u64,
}

/// One convolution path: its state_dict prefix and channel counts.
struct Path {
    suffix: &'static str,
    from_high: bool,
    to_high: bool,
    in_channels: usize,
    out_channels: usize,
}

impl OctaveConv {
    /// Splits channels as the reference implementation: the low branch gets
    /// int(alpha · channels), the high branch the rest.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        in_channels: usize,
        out_channels: usize,
        alpha_in: f64,
        alpha_out: f64,
        kernel: usize,
        padding: usize,
        stride: usize,
    ) -> Result<Self, GraphError> {
        for (what, alpha) in [("alpha_in", alpha_in), ("alpha_out", alpha_out)] {
            if !(0.0..=1.0).contains(&alpha) {
                return Err(GraphError::Invalid(format!("{name}: {what} must be between 0 and 1, got {alpha}")));
            }
        }
        if stride != 1 && stride != 2 {
            return Err(GraphError::Invalid(format!("{name}: stride must be 1 or 2, got {stride}")));
        }
        let in_low = (alpha_in * in_channels as f64) as usize;
        let out_low = (alpha_out * out_channels as f64) as usize;
        Ok(OctaveConv {
            name: name.to_string(),
            in_high: in_channels - in_low,
            in_low,
            out_high: out_channels - out_low,
            out_low,
            kernel,
            padding,
            stride,
        })
    }

    /// A plain convolution (alpha_in = alpha_out = 0): only the H→H path,
    /// named `<name>.convH2H`.
    pub fn plain(name: &str, in_channels: usize, out_channels: usize, kernel: usize, padding: usize) -> Self {
        Self::new(name, in_channels, out_channels, 0.0, 0.0, kernel, padding, 1)
            .expect("alpha 0 and stride 1 are valid")
    }

    fn paths(&self) -> Vec<Path> {
        let all = [
            Path {
                suffix: "convH2H",
                from_high: true,
                to_high: true,
                in_channels: self.in_high,
                out_channels: self.out_high,
            },
            Path {
                suffix: "convH2L",
                from_high: true,
                to_high: false,
                in_channels: self.in_high,
                out_channels: self.out_low,
            },
            Path {
                suffix: "convL2H",
                from_high: false,
                to_high: true,
                in_channels: self.in_low,
                out_channels: self.out_high,
            },
            Path {
                suffix: "convL2L",
                from_high: false,
                to_high: false,
                in_channels: self.in_low,
                out_channels: self.out_low,
            },
        ];
        all.into_iter().filter(|p| p.in_channels > 0 && p.out_channels > 0).collect()
    }

    /// Each path's name, multiply-accumulates and parameters for a high-branch
    /// input of `height` × `width` (after the stride-2 pool, if any).
    pub fn path_costs(&self, height: usize, width: usize) -> Vec<PathCost> {
        let (h, w) = if self.stride == 2 { (height / 2, width / 2) } else { (height, width) };
        self.paths()
            .into_iter()
            .map(|path| {
                // Paths that read or write the low branch run at half resolution.
                let pixels = if path.from_high && path.to_high { h * w } else { (h / 2) * (w / 2) };
                let taps = path.in_channels * self.kernel * self.kernel;
                PathCost {
                    name: format!("{}.{}", self.name, path.suffix),
                    in_channels: path.in_channels,
                    out_channels: path.out_channels,
                    pixels,
                    macs: (path.out_channels * taps * pixels) as u64,
                    params: (path.out_channels * (taps + 1)) as u64,
                }
            })
            .collect()
    }

    /// Multiply-accumulates of a plain convolution with the same channels at full resolution.
    pub fn plain_macs(&self, height: usize, width: usize) -> u64 {
        let (h, w) = if self.stride == 2 { (height / 2, width / 2) } else { (height, width) };
        ((self.out_high + self.out_low) * (self.in_high + self.in_low) * self.kernel * self.kernel * h * w) as u64
    }

    /// Each path's weight [out, in, k, k] and bias [out], named as the seed's state_dict.
    pub fn params(&self) -> Vec<ParamSpec> {
        let mut specs = Vec::new();
        for path in self.paths() {
            let fan_in = path.in_channels * self.kernel * self.kernel;
            let name = |what: &str| format!("{}.{}.{what}", self.name, path.suffix);
            specs.push(ParamSpec {
                name: name("weight"),
                shape: vec![path.out_channels, path.in_channels, self.kernel, self.kernel],
                fan_in,
            });
            specs.push(ParamSpec { name: name("bias"), shape: vec![path.out_channels], fan_in });
        }
        specs
    }

    /// Applies the layer to `x`, declaring its parameters in `g`.
    pub fn apply(&self, g: &mut Graph, x: Branches, lowering: ConvLowering) -> Result<Branches, GraphError> {
        let terms = self.terms(g, x, lowering)?;
        let node = |suffix: &str| format!("{}.{suffix}", self.name);
        // The L→H result joins the high branch upsampled: added in one pass
        // when there is an H→H result, else upsampled on its own.
        let high_out = match (self.sum(g, terms.to_high, "high")?, terms.low_to_high) {
            (Some(h), Some((_, l))) => Some(g.apply(&node("high"), ops::AddUpsampled2, &[h, l])?),
            (None, Some((prefix, l))) => Some(g.apply(&format!("{prefix}.upsample"), ops::Upsample2, &[l])?),
            (h, None) => h,
        };
        Ok(Branches { high: high_out, low: self.sum(g, terms.to_low, "low")? })
    }

    /// The layer followed by ReLU and a 2×2 max-pool on each output branch
    /// (`pool.{branch}`, `relu.{branch}` after the layer's name), with the
    /// high branch pooled before its L→H term joins it. That is exact: the
    /// upsampled term is one value over each pool window, so the window's
    /// maximum moves by it unchanged, and ReLU commutes with the maximum. It
    /// saves the full-resolution sum, its ReLU and the upsample's gradient:
    /// the L→H term is added, and differentiated, at the pooled size.
    pub fn apply_relu_pool(&self, g: &mut Graph, x: Branches, lowering: ConvLowering) -> Result<Branches, GraphError> {
        let terms = self.terms(g, x, lowering)?;
        let node = |what: &str, branch: &str| format!("{}.{what}.{branch}", self.name);
        let pool = |g: &mut Graph, branch: Option<NodeId>, label: &str| -> Result<Option<NodeId>, GraphError> {
            branch.map(|b| g.apply(&node("pool", label), ops::MaxPool2, &[b])).transpose()
        };
        let high = self.sum(g, terms.to_high, "high")?;
        let high = pool(g, high, "high")?;
        let high = match (high, terms.low_to_high) {
            (Some(h), Some((_, l))) => Some(g.apply(&node("add_low", "high"), ops::Add, &[h, l])?),
            (None, Some((_, l))) => Some(l),
            (h, None) => h,
        };
        let low = self.sum(g, terms.to_low, "low")?;
        let low = pool(g, low, "low")?;
        let relu = |g: &mut Graph, branch: Option<NodeId>, label: &str| -> Result<Option<NodeId>, GraphError> {
            branch.map(|b| g.apply(&node("relu", label), ops::Relu, &[b])).transpose()
        };
        Ok(Branches { high: relu(g, high, "high")?, low: relu(g, low, "low")? })
    }

    /// The sum of one branch's terms (None without any).
    fn sum(&self, g: &mut Graph, terms: Vec<NodeId>, label: &str) -> Result<Option<NodeId>, GraphError> {
        let mut terms = terms.into_iter();
        let Some(first) = terms.next() else { return Ok(None) };
        let name = format!("{}.{label}", self.name);
        terms.try_fold(first, |acc, t| g.apply(&name, ops::Add, &[acc, t])).map(Some)
    }

    /// The four paths' convolutions, grouped by where their results go.
    fn terms(&self, g: &mut Graph, x: Branches, lowering: ConvLowering) -> Result<Terms, GraphError> {
        self.check_input(g, x)?;
        let node = |suffix: &str| format!("{}.{suffix}", self.name);
        let pool_if_strided = |g: &mut Graph, branch: Option<NodeId>, label: &str| match branch {
            Some(b) if self.stride == 2 => g.apply(&node(label), ops::AvgPool2, &[b]).map(Some),
            other => Ok(other),
        };
        let high = pool_if_strided(g, x.high, "pool_high")?;
        let low = pool_if_strided(g, x.low, "pool_low")?;
        // H→L reads the high branch average-pooled to the low resolution.
        let high_pooled = match (high, self.out_low > 0) {
            (Some(h), true) => Some(g.apply(&node("h2l_pool"), ops::AvgPool2, &[h])?),
            _ => None,
        };

        let (mut to_high, mut to_low, mut low_to_high) = (Vec::new(), Vec::new(), None);
        for path in self.paths() {
            let source = match (path.from_high, path.to_high) {
                (true, true) => high,
                (true, false) => high_pooled,
                (false, _) => low,
            }
            .expect("a path exists only when its input branch does");
            let prefix = format!("{}.{}", self.name, path.suffix);
            let weight =
                g.param(&format!("{prefix}.weight"), &[path.out_channels, path.in_channels, self.kernel, self.kernel]);
            let bias = g.param(&format!("{prefix}.bias"), &[path.out_channels]);
            let (x_shape, w_shape) = (g.shape(source), g.shape(weight));
            let im2col = ops::Im2col { kernel: self.kernel, stride: 1, padding: self.padding };
            let y = if lowering != ConvLowering::Direct && winograd::applies(x_shape, w_shape, 1, self.padding) {
                winograd::conv2d(g, &prefix, source, weight, bias)?
            } else if lowering == ConvLowering::WinogradInference
                && winograd::suits(x_shape, w_shape, 1, self.padding)
                && im2col.fits(x_shape)
            {
                columns_conv(g, &prefix, im2col, [source, weight, bias])?
            } else {
                let conv = match lowering {
                    ConvLowering::Direct => ops::Conv2d::new(1, self.padding),
                    _ => ops::Conv2d::for_register_kernels(1, self.padding, path.in_channels),
                };
                g.apply(&prefix, conv, &[source, weight, bias])?
            };
            match (path.from_high, path.to_high) {
                (false, true) => low_to_high = Some((prefix, y)),
                (true, true) => to_high.push(y),
                (_, false) => to_low.push(y),
            }
        }
        Ok(Terms { to_high, low_to_high, to_low })
    }

    /// The branches must match the declared channels, and the low branch
    /// needs even sizes (it is, or is made, half the high resolution).
    fn check_input(&self, g: &Graph, x: Branches) -> Result<(), GraphError> {
        let channels = |b: Option<NodeId>| b.map_or(0, |id| g.shape(id)[1]);
        if channels(x.high) != self.in_high || channels(x.low) != self.in_low {
            return Err(GraphError::Invalid(format!(
                "{}: expects {} high- and {} low-frequency input channels, got {} and {}",
                self.name,
                self.in_high,
                self.in_low,
                channels(x.high),
                channels(x.low)
            )));
        }
        let needs_low = self.in_low > 0 || self.out_low > 0 || self.stride == 2;
        if let (Some(h), true) = (x.high, needs_low) {
            let shape = g.shape(h);
            if !shape[2].is_multiple_of(2) || !shape[3].is_multiple_of(2) {
                return Err(GraphError::Invalid(format!(
                    "{}: the low-frequency branch needs an even height and width, but the high branch is {}×{}; \
                     pad or resize the input to an even size",
                    self.name, shape[2], shape[3]
                )));
            }
            if let Some(l) = x.low {
                let low = g.shape(l);
                if low[2] * 2 != shape[2] || low[3] * 2 != shape[3] {
                    return Err(GraphError::Invalid(format!(
                        "{}: the low branch ({}×{}) must be half the high branch ({}×{})",
                        self.name, low[2], low[3], shape[2], shape[3]
                    )));
                }
            }
        }
        Ok(())
    }
}
