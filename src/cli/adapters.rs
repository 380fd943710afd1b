//! `octconv info` and `octconv check`.

use std::process::ExitCode;

use octconv::check;
use octconv::gpu::{self, AdapterChoice, Gpu};

pub fn info(choice: &AdapterChoice) -> Result<ExitCode, String> {
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
        let (x, y, z) =
            (l.max_compute_workgroup_size_x, l.max_compute_workgroup_size_y, l.max_compute_workgroup_size_z);
        println!("  max workgroup size (x, y, z):  {x}, {y}, {z}");
        println!("  max invocations per workgroup: {}", l.max_compute_invocations_per_workgroup);
        println!("  max workgroups per dimension:  {}", l.max_compute_workgroups_per_dimension);
        println!("  max workgroup storage:         {} KiB", l.max_compute_workgroup_storage_size >> 10);
    }
    let chosen = pollster::block_on(Gpu::new(choice)).map_err(|e| e.to_string())?;
    println!("octconv uses: {} (with --device gpu)", chosen.adapter_name());
    match super::auto_prefers_cpu(super::DeviceKind::Auto, choice, &chosen) {
        Some(why) => println!("--device auto (the default) uses the CPU device: {why}"),
        None => println!("--device auto (the default) uses it too: it is a hardware adapter"),
    }
    println!(
        "kernel variant: {} tiling for the convolutions and matrix products: {}",
        chosen.tiling.name(),
        chosen.tiling_reason
    );
    Ok(ExitCode::SUCCESS)
}

pub fn check(choice: &AdapterChoice) -> Result<ExitCode, String> {
    let gpu = pollster::block_on(Gpu::new(choice)).map_err(|e| e.to_string())?;
    println!(
        "checking every kernel (every tiling variant; {} is used here) on {} against its CPU twin\n",
        gpu.tiling.name(),
        gpu.adapter_name()
    );
    println!(
        "{:<24} {:<30} {:<40} {:>11} {:>11}  result",
        "op", "kernel", "input shapes", "max abs err", "max rel err"
    );
    let (mut passed, mut failed) = (0, 0);
    for case in check::cases() {
        match pollster::block_on(check::run_case(&gpu, &case)) {
            Ok(o) => {
                let verdict = if o.passed { "pass" } else { "FAIL" };
                let (op, kernel, shape) = (o.op, o.kernel, &o.shape);
                println!("{op:<24} {kernel:<30} {shape:<40} {:>11.3e} {:>11.3e}  {verdict}", o.max_abs, o.max_rel);
                if o.passed {
                    passed += 1
                } else {
                    failed += 1
                }
            }
            Err(e) => {
                println!("{:<24} {:<30} {:<40} FAIL: {e}", case.op, case.kernel, case.shape);
                failed += 1;
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
