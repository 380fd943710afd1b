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

/// `OCTCONV_TILING=registers|workgroup` if set, else the variant for the adapter's kind.
pub fn tiling_for(info: &wgpu::AdapterInfo) -> Result<Tiling, GpuError> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Ok(value) = std::env::var("OCTCONV_TILING") {
        return match value.as_str() {
            "registers" => Ok(Tiling::Registers),
            "workgroup" => Ok(Tiling::Workgroup),
            _ => Err(GpuError::BadSetting { name: "OCTCONV_TILING", value, expected: "registers or workgroup" }),
        };
    }
    Ok(match info.device_type {
        wgpu::DeviceType::Cpu => Tiling::Registers,
        _ => Tiling::Workgroup,
    })
}
