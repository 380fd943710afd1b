//! The `octconv` command line.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use octconv::check;
use octconv::gpu::{self, AdapterChoice, Gpu};

#[derive(Parser)]
#[command(name = "octconv", version, about = "Octave-convolution networks on any GPU through WebGPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the GPU adapters and the limits that matter to octconv.
    Info(AdapterArgs),
    /// Run every kernel on the GPU against its CPU twin and print the errors.
    Check(AdapterArgs),
}

#[derive(Args, Clone)]
struct AdapterArgs {
    /// Backends to consider: vulkan, metal, dx12, gl (comma list) [env: OCTCONV_BACKEND]
    #[arg(long)]
    backend: Option<String>,
    /// Use the adapter whose name contains this text, e.g. llvmpipe [env: OCTCONV_ADAPTER]
    #[arg(long)]
    adapter: Option<String>,
}

impl AdapterArgs {
    fn choice(&self) -> AdapterChoice {
        let env = AdapterChoice::from_env();
        AdapterChoice { backends: self.backend.clone().or(env.backends), name: self.adapter.clone().or(env.name) }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info(&args.choice()),
        Command::Check(args) => run_check(&args.choice()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn info(choice: &AdapterChoice) -> Result<ExitCode, String> {
    let adapters = pollster::block_on(gpu::adapter_summaries(choice));
    if adapters.is_empty() {
        return Err(gpu::GpuError::NoAdapter(String::new()).to_string());
    }
    for (i, a) in adapters.iter().enumerate() {
        let l = &a.limits;
        println!("adapter {i}: {}", a.info.name);
        println!("  backend:                       {:?}", a.info.backend);
        println!("  device type:                   {:?}", a.info.device_type);
        println!("  driver:                        {} {}", a.info.driver, a.info.driver_info);
        println!("  max storage buffer binding:    {} MiB", l.max_storage_buffer_binding_size >> 20);
        println!("  max buffer size:               {} MiB", l.max_buffer_size >> 20);
        println!("  max storage buffers per stage: {}", l.max_storage_buffers_per_shader_stage);
        println!(
            "  max workgroup size (x, y, z):  {}, {}, {}",
            l.max_compute_workgroup_size_x, l.max_compute_workgroup_size_y, l.max_compute_workgroup_size_z
        );
        println!("  max invocations per workgroup: {}", l.max_compute_invocations_per_workgroup);
        println!("  max workgroups per dimension:  {}", l.max_compute_workgroups_per_dimension);
        println!("  max workgroup storage:         {} KiB", l.max_compute_workgroup_storage_size >> 10);
    }
    let chosen = pollster::block_on(Gpu::new(choice)).map_err(|e| e.to_string())?;
    println!("octconv would use: {}", chosen.adapter_name());
    Ok(ExitCode::SUCCESS)
}

fn run_check(choice: &AdapterChoice) -> Result<ExitCode, String> {
    let gpu = pollster::block_on(Gpu::new(choice)).map_err(|e| e.to_string())?;
    println!("checking every kernel on {} against its CPU twin\n", gpu.adapter_name());
    println!("{:<24} {:<40} {:>12} {:>12}  result", "kernel", "input shapes", "max abs err", "max rel err");
    let (mut passed, mut failed) = (0, 0);
    for case in check::cases() {
        match pollster::block_on(check::run_case(&gpu, &case)) {
            Ok(o) => {
                let verdict = if o.passed { "pass" } else { "FAIL" };
                println!("{:<24} {:<40} {:>12.3e} {:>12.3e}  {verdict}", o.kernel, o.shape, o.max_abs, o.max_rel);
                if o.passed {
                    passed += 1
                } else {
                    failed += 1
                }
            }
            Err(e) => {
                println!("{:<24} {:<40} FAIL: {e}", case.kernel, case.shape);
                failed += 1;
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
