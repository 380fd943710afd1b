//! `--device auto` (the default) takes a hardware GPU when there is one and
//! the CPU device when the best adapter is a software rasterizer (llvmpipe,
//! SwiftShader), saying so in one line; `octconv info` tells which beforehand.

mod common;

#[test]
fn auto_takes_the_cpu_device_over_a_software_adapter() {
    let Some(gpu) = common::gpu() else { return };
    let software = gpu.info.device_type == wgpu::DeviceType::Cpu;
    let (code, info, stderr) = common::octconv(&["info"]);
    assert_eq!(code, 0, "{stderr}");
    let expected = if software { "--device auto (the default) uses the CPU device" } else { "uses it too" };
    assert!(info.contains(expected), "{info}");

    let dir = common::temp_dir("device-auto");
    common::write_mnist(&dir, &common::bars(64, 3));
    let out = dir.join("model.safetensors");
    let args = ["train", "--epochs", "1", "--offline", "--data", dir.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let (code, stdout, stderr) = common::octconv(&args);
    assert_eq!(code, 0, "{stderr}");
    if software {
        assert!(stderr.contains("is a software rasterizer; running on the CPU device (--device gpu uses"), "{stderr}");
        assert!(stdout.contains("device: CPU"), "{stdout}");
    } else {
        assert!(stdout.contains(&format!("device: {}", gpu.adapter_name())), "{stdout}");
    }
    // --device gpu still uses the adapter.
    let (code, stdout, stderr) = common::octconv(&[&args[..], &["--device", "gpu"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("device: {}", gpu.adapter_name())), "{stdout}");
}

/// `octconv tune` times every variant of the heavy kernels, keeps the faster
/// for this adapter and driver, and `octconv info` then says so and why.
#[test]
fn tune_measures_and_keeps_the_variant_for_this_adapter() {
    if common::gpu().is_none() {
        return;
    }
    let cache = common::temp_dir("tune-cache");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_octconv"))
            .args(args)
            .env("OCTCONV_CACHE", &cache)
            .env_remove("OCTCONV_TILING")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (_, before, _) = run(&["info"]);
    assert!(before.contains("by rule until octconv tune measures this one"), "{before}");
    let (code, tuned, stderr) = run(&["tune", "--rounds", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    for variant in ["registers", "wide", "workgroup"] {
        assert!(tuned.contains(&format!("  {variant} ")), "{tuned}");
    }
    assert!(tuned.contains("from now on"), "{tuned}");
    let kept = std::fs::read_to_string(cache.join("tune.json")).unwrap();
    let chosen = ["registers", "wide", "workgroup"]
        .into_iter()
        .find(|variant| kept.contains(&format!("\"tiling\": \"{variant}\"")))
        .unwrap_or_else(|| panic!("{kept}"));
    let (_, after, _) = run(&["info"]);
    assert!(after.contains(&format!("kernel variant: {chosen} tiling")), "{after}");
    assert!(after.contains("octconv tune measured a training step"), "{after}");
}
