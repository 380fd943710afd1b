//! Which adapter to open: the user's choice of backend and name, the
//! fallback to GL, what `octconv info` lists, and the kernel variant each
//! adapter gets.

use super::GpuError;
use crate::ops::Tiling;

/// Which adapter to use. Empty fields mean "the best one available".
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Comma list of backends: vulkan, metal, dx12, gl, webgpu.
    pub backends: Option<String>,
    /// A case-insensitive part of the adapter's name, e.g. "llvmpipe".
    pub name: Option<String>,
}

impl AdapterChoice {
    /// Reads `OCTCONV_BACKEND` and `OCTCONV_ADAPTER` from the environment.
    pub fn from_env() -> Self {
        let var = |key| std::env::var(key).ok().filter(|v: &String| !v.is_empty());
        AdapterChoice { backends: var("OCTCONV_BACKEND"), name: var("OCTCONV_ADAPTER") }
    }

    /// The chosen backends; by default the primary ones (Vulkan, Metal, DX12,
    /// browser WebGPU), since GL lacks features and is tried only as a fallback.
    fn backends(&self) -> wgpu::Backends {
        match &self.backends {
            Some(list) => wgpu::Backends::from_comma_list(list),
            None => wgpu::Backends::PRIMARY,
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = &self.backends {
            parts.push(format!("backend {b}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name containing \"{n}\""));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" with {}", parts.join(" and "))
        }
    }
}

/// What `octconv info` prints about one adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
}

fn new_instance(choice: &AdapterChoice) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = choice.backends();
    wgpu::Instance::new(desc)
}

/// Every adapter the chosen backends offer.
#[cfg(not(target_arch = "wasm32"))]
pub async fn adapter_summaries(choice: &AdapterChoice) -> Vec<AdapterSummary> {
    let instance = new_instance(choice);
    instance
        .enumerate_adapters(choice.backends())
        .await
        .into_iter()
        .map(|a| AdapterSummary { info: a.get_info(), limits: a.limits() })
        .collect()
}

pub(super) async fn pick_adapter(choice: &AdapterChoice) -> Result<wgpu::Adapter, GpuError> {
    let instance = new_instance(choice);
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(name) = &choice.name {
        let wanted = name.to_lowercase();
        let adapters = instance.enumerate_adapters(choice.backends()).await;
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
            .ok_or_else(|| GpuError::NoAdapter(choice.describe()));
    }
    let options =
        wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
    match instance.request_adapter(&options).await {
        Ok(adapter) => Ok(adapter),
        // Nothing on the chosen backends: try GL as a last resort unless the user chose.
        Err(_) if choice.backends.is_none() => {
            let gl = AdapterChoice { backends: Some("gl".into()), name: None };
            let fallback = new_instance(&gl);
            fallback.request_adapter(&options).await.map_err(|_| GpuError::NoAdapter(choice.describe()))
        }
        Err(_) => Err(GpuError::NoAdapter(choice.describe())),
    }
}

/// The variant of the heavy kernels for an adapter, and why: the
/// `OCTCONV_TILING` setting, else what `octconv tune` measured on this
/// adapter and driver, else the rule by kind (software drivers run a
/// workgroup as SIMD lanes of one thread and pay dearly for barriers).
pub fn tiling_for(info: &wgpu::AdapterInfo) -> Result<(Tiling, String), GpuError> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        if let Ok(value) = std::env::var("OCTCONV_TILING") {
            return match Tiling::from_name(&value) {
                Some(tiling) => Ok((tiling, "OCTCONV_TILING says so".into())),
                None => Err(GpuError::BadSetting {
                    name: "OCTCONV_TILING",
                    value,
                    expected: "registers, wide or workgroup",
                }),
            };
        }
        if let Some(tuned) = tune_cache::load(info) {
            return Ok(tuned);
        }
    }
    Ok(match info.device_type {
        wgpu::DeviceType::Cpu if info.name.contains("llvmpipe") => {
            (Tiling::WideRegisters, "llvmpipe gets it by rule until octconv tune measures this one".into())
        }
        wgpu::DeviceType::Cpu => {
            (Tiling::Registers, "software adapters get it by rule until octconv tune measures this one".into())
        }
        _ => (Tiling::Workgroup, "hardware adapters get it by rule until octconv tune measures this one".into()),
    })
}

/// What `octconv tune` measured, per adapter and driver, in a small JSON file.
#[cfg(not(target_arch = "wasm32"))]
pub mod tune_cache {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use crate::ops::Tiling;

    /// `$OCTCONV_CACHE`, else `$XDG_CACHE_HOME/octconv`, else `~/.cache/octconv`: `tune.json` there.
    pub fn path() -> Option<PathBuf> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = var("OCTCONV_CACHE")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("octconv")))
            .or_else(|| var("HOME").map(|h| h.join(".cache/octconv")))?;
        Some(dir.join("tune.json"))
    }

    /// Which adapter and driver a measurement belongs to.
    pub fn key(info: &wgpu::AdapterInfo) -> String {
        format!("{} | {:?} | {} {}", info.name, info.backend, info.driver, info.driver_info)
    }

    fn read() -> Value {
        path().and_then(|p| std::fs::read(p).ok()).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(json!({}))
    }

    /// The tuned variant for this adapter and driver, and what was measured.
    pub fn load(info: &wgpu::AdapterInfo) -> Option<(Tiling, String)> {
        let entry = read().get(key(info))?.clone();
        let tiling = Tiling::from_name(entry["tiling"].as_str()?)?;
        // An entry from before the wide variant (registers_ms, workgroup_ms) is
        // ignored: the rule applies until the adapter is tuned again.
        let steps = entry["step_ms"].as_object()?;
        let measured: Vec<String> = Tiling::ALL
            .iter()
            .filter_map(|t| Some(format!("{:.1} ms with {} tiling", steps.get(t.name())?.as_f64()?, t.name())))
            .collect();
        let why = format!(
            "octconv tune measured a training step at {} ({})",
            measured.join(", "),
            entry["clock"].as_str().unwrap_or("wall clock")
        );
        Some((tiling, why))
    }

    /// Records a measurement (one rename); returns the file written.
    pub fn save(
        info: &wgpu::AdapterInfo,
        tiling: Tiling,
        step_seconds: &[(Tiling, f64)],
        clock: &str,
    ) -> Result<PathBuf, String> {
        let path = path().ok_or("no folder for the tuning cache: set OCTCONV_CACHE or HOME")?;
        let mut all = read();
        let steps: serde_json::Map<String, serde_json::Value> =
            step_seconds.iter().map(|(t, seconds)| (t.name().to_string(), json!(seconds * 1e3))).collect();
        all[key(info)] = json!({"tiling": tiling.name(), "step_ms": steps, "clock": clock});
        let text = serde_json::to_string_pretty(&all).expect("plain values") + "\n";
        crate::files::write_atomically(&path, text.as_bytes()).map_err(|e| e.to_string())?;
        Ok(path)
    }
}
