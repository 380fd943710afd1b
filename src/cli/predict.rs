//! `octconv predict`: the digit in each image file, with the ten probabilities.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use octconv::checkpoint;
use octconv::data::{load_digit, PIXELS};
use octconv::nn::CLASSES;
use octconv::ops::loss::argmax;
use octconv::train::softmax_rows;

use super::{compile, open_device, AdapterArgs, DeviceKind};

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Checkpoint (safetensors, PyTorch state_dict names)
    #[arg(long)]
    model: PathBuf,
    /// Images (PNG or JPEG, any size): dark ink on light paper or white on black
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// The net's octave share; by default the checkpoint's (a different one is refused)
    #[arg(long, allow_negative_numbers = true)]
    alpha: Option<f64>,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceKind,
    #[command(flatten)]
    adapter: AdapterArgs,
}

pub fn run(args: PredictArgs) -> Result<ExitCode, String> {
    let name = args.model.display().to_string();
    let (net, params) =
        checkpoint::load(&args.model).and_then(|c| c.net_and_params(args.alpha, &name)).map_err(|e| e.to_string())?;
    let mut images = Vec::with_capacity(args.images.len() * PIXELS);
    for path in &args.images {
        images.extend(load_digit(path).map_err(|e| e.to_string())?);
    }
    let count = args.images.len();
    let device = open_device(args.device, &args.adapter.choice())?;
    let model = net.graph(count, false, device.conv_lowering()).map_err(|e| e.to_string())?;
    let mut runner = compile(&device, model, &params)?;
    runner.write_batch(&images, &vec![-1.0; count]).map_err(|e| e.to_string())?;
    runner.forward();
    let logits = pollster::block_on(runner.read(runner.model().logits)).map_err(|e| e.to_string())?;
    let probabilities = softmax_rows(&logits.data, CLASSES);
    let digits = argmax(&logits);
    for ((path, p), digit) in
        args.images.iter().zip(probabilities.chunks(CLASSES)).zip(digits.iter().map(|&d| d as usize))
    {
        let listed: Vec<String> = p.iter().enumerate().map(|(d, q)| format!("{d}:{q:.3}")).collect();
        println!("{}: {digit}  ({})", path.display(), listed.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
