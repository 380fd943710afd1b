//! `octconv eval`: test accuracy and confusion matrix of a checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use octconv::checkpoint;
use octconv::data::Split;
use octconv::nn::CLASSES;
use octconv::train::predictions;

use super::{compile, RunArgs};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint (safetensors, PyTorch state_dict names)
    #[arg(long)]
    model: PathBuf,
    /// The net's octave share; by default the checkpoint's (a different one is refused)
    #[arg(long, allow_negative_numbers = true)]
    alpha: Option<f64>,
    /// Examples per forward pass
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[command(flatten)]
    run: RunArgs,
}

pub fn run(args: EvalArgs) -> Result<ExitCode, String> {
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    let name = args.model.display().to_string();
    let (net, params) =
        checkpoint::load(&args.model).and_then(|c| c.net_and_params(args.alpha, &name)).map_err(|e| e.to_string())?;
    let kind = args.run.dataset_kind();
    let test = args.run.load(Split::Test)?;
    let device = args.run.device()?;
    let batch = super::capped_batch(args.batch, test.len(), "test images");
    let model = net.graph(batch, false, device.conv_lowering()).map_err(|e| e.to_string())?;
    let mut runner = compile(&device, model, &params)?;
    let predicted = pollster::block_on(async {
        let on_device = runner.upload_dataset(&test).await?;
        predictions(runner.as_mut(), on_device).await
    })
    .map_err(|e| e.to_string())?;

    let mut confusion = [[0usize; CLASSES]; CLASSES];
    for (&p, &label) in predicted.iter().zip(&test.labels) {
        confusion[label as usize][p] += 1;
    }
    let correct: usize = (0..CLASSES).map(|c| confusion[c][c]).sum();
    println!(
        "{name} (alpha {}) on the {} test set ({} images), device: {}",
        net.alpha,
        kind.label(),
        test.len(),
        device.describe()
    );
    println!("test accuracy: {:.4} ({correct}/{})\n", correct as f64 / test.len() as f64, test.len());
    println!("confusion matrix (rows: true class, columns: predicted)");
    print!("      ");
    for c in 0..CLASSES {
        print!("{c:>6}");
    }
    println!();
    for (label, row) in confusion.iter().enumerate() {
        print!("{label:>6}");
        for count in row {
            print!("{count:>6}");
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
