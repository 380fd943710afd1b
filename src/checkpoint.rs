//! Checkpoints as safetensors with PyTorch's state_dict names and layouts,
//! so a file exported from PyTorch loads here and ours load in PyTorch.
//! Adam's state, for resuming, goes in a sibling `.adam.safetensors` file.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::files::FileError;
use crate::nn::{ParamSet, ParamSpec, SeedNet};
use crate::optim::OptimizerState;
use crate::tensor::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error(transparent)]
    File(#[from] FileError),
}

/// Parameters with their metadata (epoch, accuracy, recipe …).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub params: ParamSet,
    pub metadata: HashMap<String, String>,
}

/// Serialises named f32 tensors with metadata as safetensors bytes.
pub fn to_bytes(tensors: &[(String, &Tensor)], metadata: &HashMap<String, String>) -> Vec<u8> {
    let views = tensors.iter().map(|(name, t)| {
        let view = TensorView::new(Dtype::F32, t.shape.clone(), bytemuck::cast_slice(&t.data))
            .expect("f32 data fills its shape");
        (name.clone(), view)
    });
    safetensors::serialize(views, Some(metadata.clone())).expect("f32 tensors serialise")
}

/// Reads every f32 tensor of a safetensors file's bytes; `path` names it in errors.
pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Checkpoint, CheckpointError> {
    let invalid = |problem: String| CheckpointError::Invalid { path: path.to_string(), problem };
    let file = SafeTensors::deserialize(bytes).map_err(|e| {
        // PyTorch's own format is a zip archive (or, before 1.6, a pickle).
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0x80]) {
            invalid("is a PyTorch .pt file, not safetensors; in PyTorch, save the state_dict with safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")".into())
        } else {
            invalid(format!("is not a safetensors file ({e}); octconv reads checkpoints written by octconv train or safetensors.torch.save_file"))
        }
    })?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(invalid(format!(
                "tensor {name} is {:?}; only float32 checkpoints are read; save the state_dict as float32 (model.float()) and try again",
                view.dtype()
            )));
        }
        let data: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        tensors.push((name, Tensor::new(view.shape(), data)));
    }
    Ok(Checkpoint { params: ParamSet { tensors }, metadata })
}

impl Checkpoint {
    /// The octave share of the net it holds: its `alpha` metadata, or the
    /// seed's for a file without one (a PyTorch export of the seed net).
    pub fn alpha(&self, path: &str) -> Result<f64, CheckpointError> {
        let Some(text) = self.metadata.get("alpha") else { return Ok(crate::nn::SEED_ALPHA) };
        text.parse().map_err(|_| CheckpointError::Invalid {
            path: path.to_string(),
            problem: format!("records alpha \"{text}\", which is not a number; give a checkpoint written by octconv train, or remove the alpha entry from its metadata"),
        })
    }

    /// The net this checkpoint holds, with its parameters; `alpha`, when
    /// given, must be the checkpoint's.
    pub fn net_and_params(&self, alpha: Option<f64>, path: &str) -> Result<(SeedNet, ParamSet), CheckpointError> {
        let saved = self.alpha(path)?;
        if let Some(wanted) = alpha.filter(|&a| a != saved) {
            return Err(CheckpointError::Invalid {
                path: path.to_string(),
                problem: format!(
                    "holds the net with alpha {saved}, not {wanted}; leave --alpha out to use the checkpoint's, or train a net with --alpha {wanted}"
                ),
            });
        }
        let net = SeedNet::with_alpha(
            crate::nn::checked_alpha(saved)
                .map_err(|problem| CheckpointError::Invalid { path: path.to_string(), problem })?,
        );
        let params = self.params_for(&net.params(), path)?;
        Ok((net, params))
    }

    /// The parameters in the model's order, after checking that every name
    /// and shape the model expects is present, and nothing else.
    pub fn params_for(&self, specs: &[ParamSpec], path: &str) -> Result<ParamSet, CheckpointError> {
        let invalid = |problem: String| CheckpointError::Invalid { path: path.to_string(), problem };
        let mut tensors = Vec::new();
        for spec in specs {
            let tensor = self
                .params
                .get(&spec.name)
                .ok_or_else(|| invalid(format!("has no tensor {}; it is not a checkpoint of this model: give one written by octconv train (or a state_dict of the seed net)", spec.name)))?;
            if tensor.shape != spec.shape {
                return Err(invalid(format!(
                    "has {} of shape {:?}, but the model needs {:?}; it is a checkpoint of another model: give one written by octconv train",
                    spec.name, tensor.shape, spec.shape
                )));
            }
            tensors.push((spec.name.clone(), tensor.clone()));
        }
        if let Some((extra, _)) = self.params.tensors.iter().find(|(n, _)| !specs.iter().any(|s| &s.name == n)) {
            return Err(invalid(format!(
                "has tensor {extra}, which this model does not have; it is a checkpoint of another model: give one written by octconv train"
            )));
        }
        let params = ParamSet { tensors };
        if let Some(name) = params.first_non_finite() {
            return Err(invalid(format!(
                "has values in {name} that are not finite numbers (NaN or infinite): the run that wrote it diverged; use an earlier checkpoint"
            )));
        }
        Ok(params)
    }
}

/// Serialises Adam's state as PyTorch names it: `<param>.exp_avg`, `<param>.exp_avg_sq`.
pub fn optimizer_to_bytes(state: &OptimizerState) -> Vec<u8> {
    let mut tensors = Vec::new();
    for (name, m, v) in &state.moments {
        tensors.push((format!("{name}.exp_avg"), m));
        tensors.push((format!("{name}.exp_avg_sq"), v));
    }
    let metadata = HashMap::from([("step".to_string(), state.step.to_string())]);
    to_bytes(&tensors, &metadata)
}

/// Reads Adam's state back for the parameters `specs`.
pub fn optimizer_from_bytes(bytes: &[u8], specs: &[ParamSpec], path: &str) -> Result<OptimizerState, CheckpointError> {
    let file = from_bytes(bytes, path)?;
    let invalid = |problem: String| CheckpointError::Invalid { path: path.to_string(), problem };
    let step =
        file.metadata.get("step").and_then(|s| s.parse().ok()).ok_or_else(|| invalid("has no step count".into()))?;
    let mut moments = Vec::new();
    for spec in specs {
        let get = |suffix: &str| {
            let name = format!("{}.{suffix}", spec.name);
            match file.params.get(&name) {
                Some(t) if t.shape == spec.shape => Ok(t.clone()),
                _ => Err(invalid(format!("has no {name} of shape {:?}; it is not this model's Adam state (move it away to restart Adam's moments)", spec.shape))),
            }
        };
        let (m, v) = (get("exp_avg")?, get("exp_avg_sq")?);
        if m.data.iter().chain(&v.data).any(|x| !x.is_finite()) || v.data.iter().any(|&x| x < 0.0) {
            return Err(invalid(format!(
                "has moments of {} that are not finite or second moments below 0; it is not a usable Adam state (resume without it by moving it away)",
                spec.name
            )));
        }
        moments.push((spec.name.clone(), m, v));
    }
    Ok(OptimizerState { step, moments })
}

/// The metadata key naming a training checkpoint's Adam state file.
pub const OPTIMIZER_FILE: &str = "optimizer_file";

/// The largest checkpoint file read (the seed net's is 3.3 MB).
pub const MAX_CHECKPOINT_BYTES: u64 = 1 << 30;

#[cfg(not(target_arch = "wasm32"))]
mod on_disk {
    use std::path::{Path, PathBuf};

    use super::*;

    /// The file holding Adam's state beside checkpoint `path`: `model.safetensors` → `model.adam.safetensors`.
    pub fn optimizer_path(path: &Path) -> PathBuf {
        path.with_extension("adam.safetensors")
    }

    pub fn save(path: &Path, params: &ParamSet, metadata: &HashMap<String, String>) -> Result<(), CheckpointError> {
        let tensors: Vec<(String, &Tensor)> = params.tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
        Ok(crate::files::write_atomically(path, &to_bytes(&tensors, metadata))?)
    }

    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        from_bytes(&crate::files::read_bounded(path, MAX_CHECKPOINT_BYTES)?, &path.display().to_string())
    }

    /// A training checkpoint at `path`, committed by one rename: Adam's state
    /// goes first into a file of its own for this epoch, then the model,
    /// whose metadata names that file; then older Adam files are removed. A
    /// run killed at any moment leaves a model and the Adam state it names.
    pub fn save_training(
        path: &Path,
        params: &ParamSet,
        metadata: &HashMap<String, String>,
        state: &OptimizerState,
        epoch: usize,
    ) -> Result<(), CheckpointError> {
        let adam = epoch_optimizer_path(path, epoch);
        save_optimizer(&adam, state)?;
        let mut metadata = metadata.clone();
        let adam_name = adam.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        metadata.insert(OPTIMIZER_FILE.to_string(), adam_name.clone());
        save(path, params, &metadata)?;
        for stale in epoch_optimizer_files(path).into_iter().filter(|p| p.file_name() != adam.file_name()) {
            let _ = std::fs::remove_file(stale);
        }
        Ok(())
    }

    /// The Adam state a training checkpoint names (or, for one written before
    /// that, the `.adam.safetensors` file beside it; None when there is none).
    pub fn load_training_optimizer(
        path: &Path,
        checkpoint: &Checkpoint,
        specs: &[ParamSpec],
    ) -> Result<Option<OptimizerState>, CheckpointError> {
        let adam = match checkpoint.metadata.get(OPTIMIZER_FILE) {
            Some(name) => path.with_file_name(name),
            None => optimizer_path(path),
        };
        if !adam.exists() {
            if checkpoint.metadata.contains_key(OPTIMIZER_FILE) {
                return Err(CheckpointError::Invalid {
                    path: path.display().to_string(),
                    problem: format!(
                        "names the Adam state {}, which is missing; copy it back beside the checkpoint",
                        adam.display()
                    ),
                });
            }
            return Ok(None);
        }
        load_optimizer(&adam, specs).map(Some)
    }

    /// `model.safetensors` → `model.adam-epoch<k>.safetensors`
    fn epoch_optimizer_path(path: &Path, epoch: usize) -> PathBuf {
        path.with_extension(format!("adam-epoch{epoch}.safetensors"))
    }

    /// The per-epoch Adam files beside `path`.
    fn epoch_optimizer_files(path: &Path) -> Vec<PathBuf> {
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let prefix = format!("{stem}.adam-epoch");
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".safetensors"))
            })
            .collect()
    }

    /// Writes Adam's state to `path` (see `optimizer_to_bytes`).
    pub fn save_optimizer(path: &Path, state: &OptimizerState) -> Result<(), CheckpointError> {
        Ok(crate::files::write_atomically(path, &optimizer_to_bytes(state))?)
    }

    /// Reads Adam's state for the parameters `specs` from `path`.
    pub fn load_optimizer(path: &Path, specs: &[ParamSpec]) -> Result<OptimizerState, CheckpointError> {
        optimizer_from_bytes(
            &crate::files::read_bounded(path, MAX_CHECKPOINT_BYTES)?,
            specs,
            &path.display().to_string(),
        )
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use on_disk::{load, load_optimizer, load_training_optimizer, optimizer_path, save, save_optimizer, save_training};
