//! The seed network as a whole: the GPU program against the CPU program,
//! autodiff against finite differences, and the odd-size error.

mod common;

use std::rc::Rc;

use octconv::exec::{self, Device, Runner};
use octconv::nn::{Branches, ConvLowering, OctaveConv, ParamSet, SeedNet};
use octconv::ops::Tiling;
use octconv::optim::AdamConfig;
use octconv::tensor::Tensor;

/// A random batch: pixels in [0, 1] and labels 0..10, the last row padding when `pad`.
fn batch(size: usize, seed: u64, pad: bool) -> (Vec<f32>, Vec<f32>) {
    let images = Tensor::uniform(&[size, 1, 28, 28], 0.0, 1.0, seed).data;
    let mut labels = Tensor::labels(size, 10, seed + 1).data;
    if pad {
        *labels.last_mut().unwrap() = -1.0;
    }
    (images, labels)
}

fn runner(device: &Device, batch: usize, params: &ParamSet) -> Runner {
    let model = SeedNet::new().graph(batch, true, device.conv_lowering()).unwrap();
    pollster::block_on(exec::compile(device, model, params, AdamConfig::default())).unwrap()
}

/// Largest |a − b| over two tensors.
fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn gpu_training_steps_match_the_cpu_with_register_tiling() {
    steps_match_the_cpu(Tiling::Registers);
}

/// The variant llvmpipe uses: fc1 and conv3's weight-gradient products on 32×16 tiles.
#[test]
fn gpu_training_steps_match_the_cpu_with_wide_register_tiling() {
    steps_match_the_cpu(Tiling::WideRegisters);
}

/// The variant hardware GPUs use, run here too so every variant is held to the CPU.
#[test]
fn gpu_training_steps_match_the_cpu_with_workgroup_tiling() {
    steps_match_the_cpu(Tiling::Workgroup);
}

/// Three training steps (the last batch padded) on the GPU with the heavy
/// kernels in `tiling`'s variant and on the CPU: gradients, metrics, parameters.
fn steps_match_the_cpu(tiling: Tiling) {
    let Some(mut gpu) = common::gpu() else { return };
    gpu.tiling = tiling;
    let params = ParamSet::init(&SeedNet::new().params(), 7);
    let mut on_gpu = runner(&Device::Gpu(Rc::new(gpu)), 5, &params);
    let mut on_cpu = runner(&Device::Cpu, 5, &params);
    for step in 0..3 {
        let (images, labels) = batch(5, 100 + step, step == 2);
        for r in [&mut on_gpu, &mut on_cpu] {
            r.write_batch(&images, &labels).unwrap();
            r.train_step();
        }
        if step == 0 {
            // Every gradient of the first step, before Adam: the kernels and
            // the CPU's GEMMs sum in different orders, so allow 1e-4 of the largest.
            // (The GPU's graph may lower convolutions otherwise: same parameters, other nodes.)
            let pairs = on_gpu.model().grads.iter().zip(&on_cpu.model().grads);
            for (&(param, grad), &(_, cpu_grad)) in pairs.collect::<Vec<_>>() {
                let (g, c) = (
                    pollster::block_on(on_gpu.read(grad)).unwrap(),
                    pollster::block_on(on_cpu.read(cpu_grad)).unwrap(),
                );
                let scale = c.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let name = &on_gpu.model().graph.nodes[param].name;
                assert!(max_diff(&g, &c) <= 1e-4 * scale + 1e-7, "gradient of {name} differs by {}", max_diff(&g, &c));
            }
        }
    }
    let (mg, mc) = (pollster::block_on(on_gpu.metrics()).unwrap(), pollster::block_on(on_cpu.metrics()).unwrap());
    assert_eq!(mg.samples, 14.0);
    assert_eq!(mg.correct, mc.correct);
    assert!((mg.loss_sum - mc.loss_sum).abs() < 1e-4 * mc.loss_sum.abs(), "{mg:?} vs {mc:?}");
    // Adam divides by sqrt(v): for a gradient near zero, rounding can move an
    // update by up to lr (1e-3) per step, so parameters agree to a fraction
    // of the 3e-3 they can move in three steps, not to float precision. The
    // GPU's Winograd convolutions round conv3's gradients otherwise than the
    // CPU's direct ones: one of its weights differs by 1.2e-4 (the direct
    // kernels: below 1e-4). The first step's gradients above are the precise check.
    let (pg, pc) = (pollster::block_on(on_gpu.params()).unwrap(), pollster::block_on(on_cpu.params()).unwrap());
    for ((name, g), (_, c)) in pg.tensors.iter().zip(&pc.tensors) {
        assert!(max_diff(g, c) < 5e-4, "{name} differs by {} after 3 steps", max_diff(g, c));
    }
    // Adam's moments, read back parameter by parameter from the shared buffers.
    let (sg, sc) =
        (pollster::block_on(on_gpu.optimizer_state()).unwrap(), pollster::block_on(on_cpu.optimizer_state()).unwrap());
    assert_eq!((sg.step, sg.moments.len()), (sc.step, sc.moments.len()));
    for ((name, mg, vg), (_, mc, vc)) in sg.moments.iter().zip(&sc.moments) {
        for (g, c, which) in [(mg, mc, "m"), (vg, vc, "v")] {
            let scale = c.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(max_diff(g, c) <= 1e-3 * scale + 1e-9, "Adam's {which} of {name} differs by {}", max_diff(g, c));
        }
    }
}

#[test]
fn autodiff_matches_finite_differences_on_the_whole_network() {
    autodiff_matches_finite_differences(&SeedNet::new(), ConvLowering::Direct);
}

/// The net with conv3's convolutions as Winograd transforms and batched
/// products (what software GPUs run), differentiated through those ops.
#[test]
fn autodiff_matches_finite_differences_through_winograd_convolutions() {
    autodiff_matches_finite_differences(&SeedNet::new(), ConvLowering::Winograd);
}

/// The net lowered for software GPUs (conv3 as Winograd, conv1's weight
/// gradient as batched products) computes what the direct one does: loss
/// and every gradient of one step, on the CPU device (each op its CPU twin).
#[test]
fn winograd_lowering_matches_direct_convolutions() {
    let params = ParamSet::init(&SeedNet::new().params(), 11);
    let (images, labels) = batch(3, 60, false);
    let mut runs = [ConvLowering::Direct, ConvLowering::Winograd].map(|lowering| {
        let model = SeedNet::new().graph(3, true, lowering).unwrap();
        let mut r = pollster::block_on(exec::compile(&Device::Cpu, model, &params, AdamConfig::default())).unwrap();
        r.write_batch(&images, &labels).unwrap();
        r.train_step();
        r
    });
    let names = |r: &Runner| r.model().graph.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    assert!(names(&runs[1]).contains(&"conv3.convH2H.winograd_product".to_string()), "conv3 H→H is lowered");
    assert!(names(&runs[1]).contains(&"conv1.convH2H.backward.1.per_image".to_string()), "conv1's dw is products");
    assert!(!names(&runs[0]).iter().any(|n| n.contains("winograd")));
    let [direct, winograd] = &mut runs;
    let (md, mw) = (pollster::block_on(direct.metrics()).unwrap(), pollster::block_on(winograd.metrics()).unwrap());
    assert!((md.loss_sum - mw.loss_sum).abs() < 1e-5 * md.loss_sum.abs(), "{md:?} vs {mw:?}");
    for k in 0..direct.model().grads.len() {
        let (d, w) = (direct.model().grads[k].1, winograd.model().grads[k].1);
        let (d, w) = (pollster::block_on(direct.read(d)).unwrap(), pollster::block_on(winograd.read(w)).unwrap());
        let scale = d.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let name = &direct.model().graph.nodes[direct.model().grads[k].0].name;
        assert!(max_diff(&d, &w) <= 1e-5 * scale + 1e-8, "gradient of {name} differs by {}", max_diff(&d, &w));
    }
}

/// A forward-only graph at a batch whose Winograd tensors would pass a
/// storage binding (conv3 H→H at 700 images: M would be 137 MiB) runs that
/// convolution as im2col and a product per image on a software GPU, in the
/// variant the adapter uses, and gives the CPU device's logits (direct
/// convolutions) within 1e-4 of the largest.
#[test]
fn inference_too_large_for_winograd_runs_conv3_as_column_products() {
    let Some(gpu) = common::gpu() else { return };
    let device = Device::Gpu(Rc::new(gpu));
    if device.conv_lowering() != ConvLowering::Winograd {
        return; // a hardware GPU keeps direct convolutions
    }
    let (size, net) = (700, SeedNet::new());
    let params = ParamSet::init(&net.params(), 21);
    let (images, labels) = batch(size, 70, false);
    let mut runs =
        [(&device, device.conv_lowering()), (&Device::Cpu, ConvLowering::Direct)].map(|(device, lowering)| {
            let model = net.graph(size, false, lowering).unwrap();
            let mut r = pollster::block_on(exec::compile(device, model, &params, AdamConfig::default())).unwrap();
            r.write_batch(&images, &labels).unwrap();
            r.forward();
            r
        });
    let names: Vec<String> = runs[0].model().graph.nodes.iter().map(|n| n.name.clone()).collect();
    assert!(names.contains(&"conv3.convH2H.columns_product".to_string()), "conv3 H→H runs as column products");
    assert!(names.contains(&"conv3.convL2H.winograd_product".to_string()), "conv3 L→H still fits Winograd");
    let [gpu_run, cpu_run] = &mut runs;
    let (g, c) = (gpu_run.model().logits, cpu_run.model().logits);
    let (g, c) = (pollster::block_on(gpu_run.read(g)).unwrap(), pollster::block_on(cpu_run.read(c)).unwrap());
    let scale = c.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max_diff(&g, &c) <= 1e-4 * scale, "logits differ by {} (largest {scale})", max_diff(&g, &c));
}

/// The net generalised to every alpha of the study (0 is the plain CNN).
#[test]
fn autodiff_matches_finite_differences_at_every_alpha() {
    for alpha in [0.0, 0.125, 0.25, 0.75] {
        autodiff_matches_finite_differences(&SeedNet::with_alpha(alpha), ConvLowering::Direct);
    }
}

fn autodiff_matches_finite_differences(net: &SeedNet, lowering: ConvLowering) {
    let params = ParamSet::init(&net.params(), 3);
    let (images, labels) = batch(2, 40, false);
    let model = net.graph(2, true, lowering).unwrap();
    let mut r = pollster::block_on(exec::compile(&Device::Cpu, model, &params, AdamConfig::default())).unwrap();
    let loss_at = |r: &mut Runner, p: &ParamSet| -> f64 {
        r.load_params(p).unwrap();
        r.reset_metrics();
        r.write_batch(&images, &labels).unwrap();
        r.forward();
        pollster::block_on(r.metrics()).unwrap().loss()
    };
    // Central differences for a few entries of every parameter tensor.
    let h = 1e-3f32;
    let mut numeric = Vec::new();
    for (k, (name, tensor)) in params.tensors.iter().enumerate() {
        for i in [0, tensor.len() / 2, tensor.len() - 1] {
            let mut plus = params.clone();
            plus.tensors[k].1.data[i] += h;
            let mut minus = params.clone();
            minus.tensors[k].1.data[i] -= h;
            let fd = (loss_at(&mut r, &plus) - loss_at(&mut r, &minus)) / (2.0 * h as f64);
            numeric.push((name.clone(), k, i, fd));
        }
    }
    r.load_params(&params).unwrap();
    r.write_batch(&images, &labels).unwrap();
    r.train_step();
    let grads = r.model().grads.clone();
    for (name, k, i, fd) in numeric {
        let analytic = pollster::block_on(r.read(grads[k].1)).unwrap().data[i] as f64;
        assert!(
            (fd - analytic).abs() <= 2e-3 + 0.05 * analytic.abs(),
            "alpha {}: {name}[{i}]: finite difference {fd:.6}, autodiff {analytic:.6}",
            net.alpha
        );
    }
}

#[test]
fn an_odd_size_on_the_low_branch_is_a_clear_error() {
    let mut g = octconv::graph::Graph::new();
    let x = g.input("images", &[1, 1, 27, 27]);
    let conv = OctaveConv::new("conv1", 1, 16, 0.0, 0.5, 3, 1, 1).unwrap();
    let err = conv.apply(&mut g, Branches { high: Some(x), low: None }, ConvLowering::Direct).unwrap_err().to_string();
    assert!(err.contains("conv1") && err.contains("even") && err.contains("27×27"), "{err}");
}

#[test]
fn octave_conv_has_a_path_only_where_both_channel_counts_are_nonzero() {
    let names = |conv: &OctaveConv| -> Vec<String> {
        conv.params().iter().filter(|p| p.name.ends_with("weight")).map(|p| p.name.clone()).collect()
    };
    let general = OctaveConv::new("c", 16, 32, 0.5, 0.5, 3, 1, 1).unwrap();
    assert_eq!(names(&general), ["c.convH2H.weight", "c.convH2L.weight", "c.convL2H.weight", "c.convL2L.weight"]);
    let first = OctaveConv::new("c", 1, 16, 0.0, 0.5, 3, 1, 1).unwrap();
    assert_eq!(names(&first), ["c.convH2H.weight", "c.convH2L.weight"]);
    let last = OctaveConv::new("c", 32, 64, 0.5, 0.0, 3, 1, 1).unwrap();
    assert_eq!(names(&last), ["c.convH2H.weight", "c.convL2H.weight"]);
    assert_eq!(names(&OctaveConv::plain("c", 3, 8, 3, 1)), ["c.convH2H.weight"]);
    let uneven = OctaveConv::new("c", 10, 20, 0.25, 0.75, 3, 1, 1).unwrap();
    assert_eq!((uneven.in_high, uneven.in_low, uneven.out_high, uneven.out_low), (8, 2, 5, 15));
    assert!(OctaveConv::new("c", 8, 8, 1.5, 0.5, 3, 1, 1).is_err());
}

#[test]
fn a_stride_2_octave_conv_pools_then_convolves() {
    let mut g = octconv::graph::Graph::new();
    let high = g.input("high", &[2, 4, 28, 28]);
    let low = g.input("low", &[2, 4, 14, 14]);
    let conv = OctaveConv::new("s2", 8, 16, 0.5, 0.5, 3, 1, 2).unwrap();
    let y = conv.apply(&mut g, Branches { high: Some(high), low: Some(low) }, ConvLowering::Direct).unwrap();
    assert_eq!(g.shape(y.high.unwrap()), [2, 8, 14, 14]);
    assert_eq!(g.shape(y.low.unwrap()), [2, 8, 7, 7]);
    assert_eq!(conv.path_costs(28, 28)[0].pixels, 14 * 14);
}

/// On the GPU the ReLUs after conv1's pools and after conv3's octave sum are
/// computed by those ops' kernels; the feature maps shown on the page stay unfused.
#[test]
fn relus_are_fused_into_the_ops_before_them() {
    use octconv::exec::{relu_fusions, Schedule};
    let model = SeedNet::new().graph(4, true, ConvLowering::Direct).unwrap();
    let fused = relu_fusions(&model, &Schedule::new(&model), |op, inputs, output| {
        op.absorbs_relu(inputs, output, Tiling::Registers)
    });
    let g = &model.graph;
    let mut pairs: Vec<String> = fused
        .iter()
        .enumerate()
        .filter_map(|(relu, p)| p.map(|p| format!("{} <- {}", g.nodes[relu].name, g.nodes[p].name)))
        .collect();
    pairs.sort();
    assert_eq!(pairs, ["conv3.relu.high <- conv3.add_low.high", "relu1.high <- pool1.high", "relu1.low <- pool1.low"]);
}

/// `apply_relu_pool` pools the high branch before its L→H term joins it
/// (conv3 in the seed net): the same outputs as the layer, ReLU and max-pool
/// in the seed's order, and the same gradients, on the plain CPU twins.
#[test]
fn pooling_before_the_low_to_high_term_joins_changes_nothing() {
    use octconv::graph::{Graph, Source};
    use octconv::ops::{MaxPool2, Relu};
    let conv = OctaveConv::new("c", 8, 6, 0.5, 0.0, 3, 1, 1).unwrap();
    // The layer's output and every gradient (by the name of what it is the gradient of), for dy of ones.
    let run = |pool_first: bool| -> (Tensor, Vec<(String, Tensor)>) {
        let mut g = Graph::new();
        let x = Branches { high: Some(g.input("high", &[2, 4, 10, 10])), low: Some(g.input("low", &[2, 4, 5, 5])) };
        let y = if pool_first {
            conv.apply_relu_pool(&mut g, x, ConvLowering::Direct).unwrap().high.unwrap()
        } else {
            let h = conv.apply(&mut g, x, ConvLowering::Direct).unwrap().high.unwrap();
            let r = g.apply("relu", Relu, &[h]).unwrap();
            g.apply("pool", MaxPool2, &[r]).unwrap()
        };
        let y_shape = g.shape(y).to_vec();
        let dy = g.input("dy", &y_shape);
        let grads = g.backward_with(y, dy).unwrap();
        // Inputs and parameters drawn by name, so both graphs see the same values; dy is all ones.
        let leaves: Vec<(usize, Tensor)> = g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| matches!(node.source, Source::Input | Source::Param))
            .map(|(id, node)| {
                let seed = node.name.bytes().map(u64::from).sum();
                let value = if node.name == "dy" {
                    Tensor::new(&node.shape, vec![1.0; node.shape.iter().product()])
                } else {
                    Tensor::uniform(&node.shape, -1.0, 1.0, seed)
                };
                (id, value)
            })
            .collect();
        let values = common::evaluate(&g, &leaves);
        (values[y].clone(), grads.iter().map(|&(of, grad)| (g.nodes[of].name.clone(), values[grad].clone())).collect())
    };
    let (seed_order, seed_grads) = run(false);
    let (pooled_first, pooled_grads) = run(true);
    assert_eq!(seed_order.shape, [2, 6, 5, 5]);
    assert_eq!(seed_order.data, pooled_first.data, "adding a constant over each window commutes with its maximum");
    assert!(seed_order.data.iter().any(|&v| v > 0.0) && seed_order.data.contains(&0.0));
    assert_eq!(seed_grads.len(), 4, "both paths' weights and biases");
    for ((name, a), (other, b)) in seed_grads.iter().zip(&pooled_grads) {
        assert_eq!(name, other);
        let worst = a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs() / x.abs().max(1.0)).fold(0.0, f32::max);
        assert!(worst < 1e-5, "{name}: gradients differ by {worst}");
    }
}
