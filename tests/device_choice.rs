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
