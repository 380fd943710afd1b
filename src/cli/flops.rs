//! `octconv flops`: the seed network's cost analysis per layer and path.

use std::process::ExitCode;

use clap::Args;
use octconv::nn::{checked_alpha, SeedNet, SEED_ALPHA};

#[derive(Args, Debug)]
pub struct FlopsArgs {
    /// Share of low-frequency channels inside the network (0: the plain CNN; the seed uses 0.5)
    #[arg(long, default_value_t = SEED_ALPHA, allow_negative_numbers = true)]
    alpha: f64,
}

pub fn run(args: FlopsArgs) -> Result<ExitCode, String> {
    let net = SeedNet::with_alpha(checked_alpha(args.alpha).map_err(|e| format!("--{e}"))?);
    println!("seed Octave MNIST net with alpha = {}: cost per image (MACs = multiply-accumulates)\n", args.alpha);
    println!("{:<16} {:>8} {:>8} {:>10} {:>12} {:>10}", "path", "in ch", "out ch", "pixels", "MACs", "params");
    let (mut total_macs, mut total_params) = (0u64, 0u64);
    // conv1 sees 28×28; conv2 and conv3 see the 14×14 high branch after the max-pool.
    for (layer, side) in [(&net.conv1, 28), (&net.conv2, 14), (&net.conv3, 14)] {
        let costs = layer.path_costs(side, side);
        let layer_macs: u64 = costs.iter().map(|c| c.macs).sum();
        for c in &costs {
            println!(
                "{:<16} {:>8} {:>8} {:>10} {:>12} {:>10}",
                c.name, c.in_channels, c.out_channels, c.pixels, c.macs, c.params
            );
            total_params += c.params;
        }
        let plain = layer.plain_macs(side, side);
        println!(
            "{:<16} {:>39} {:>12}  = {:.3} × a plain conv of the same channels ({plain} MACs)\n",
            format!("{} total", layer.name),
            "",
            layer_macs,
            layer_macs as f64 / plain as f64
        );
        total_macs += layer_macs;
    }
    for fc in [&net.fc1, &net.fc2] {
        let macs = (fc.in_features * fc.out_features) as u64;
        let params = macs + fc.out_features as u64;
        println!("{:<16} {:>8} {:>8} {:>10} {:>12} {:>10}", fc.name, fc.in_features, fc.out_features, 1, macs, params);
        total_macs += macs;
        total_params += params;
    }
    let a = args.alpha;
    println!(
        "\ntotal: {total_macs} MACs ({:.2} MFLOP) per image forward, {total_params} parameters",
        2.0 * total_macs as f64 / 1e6
    );
    println!(
        "an octave conv with alpha_in = alpha_out = {a} costs 1 − ¾·α(2 − α) = {:.4} of the plain conv (conv2 above)",
        1.0 - 0.75 * a * (2.0 - a)
    );
    Ok(ExitCode::SUCCESS)
}
