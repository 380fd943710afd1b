//! The shader lab in the page: the native lab's loop (`crate::lab`) on two
//! WebGPU devices. Results go to the page as JSON text.

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

use super::js_error;
use crate::data::{parse_idx, Dataset};
use crate::gpu::{AdapterChoice, Diagnostic};
use crate::lab::{families_of, shipped_file, Lab, Report};
use crate::ops::kernel::COMMON;
use crate::ops::FAMILIES;

/// Images trained on by `train` at most (the steps' batches cycle through them).
const TRAINING_IMAGES: usize = 6400;

/// A lab session: the shipped kernels on one device, the edited ones on another.
#[wasm_bindgen]
pub struct LabSession {
    lab: Lab,
    data: Option<Dataset>,
}

fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({ "file": d.file, "line": d.line, "column": d.column, "message": d.message, "text": d.to_string() })
}

fn report_json(report: &Report) -> String {
    let findings: Vec<Value> = report.findings.iter().map(|f| json!({ "passed": f.passed, "text": f.text })).collect();
    json!({
        "file": report.file,
        "compileError": report.compile_error.as_ref().map(diagnostic_json),
        "findings": findings,
        "passed": report.passed(),
        "failed": report.failed(),
        "seconds": report.seconds,
    })
    .to_string()
}

#[wasm_bindgen]
impl LabSession {
    /// Opens two devices on the browser's WebGPU adapter (a software one too:
    /// editing kernels needs WebGPU, however slow).
    pub async fn open() -> Result<LabSession, JsError> {
        let lab = Lab::open(&AdapterChoice::default()).await.map_err(js_error)?;
        Ok(LabSession { lab, data: None })
    }

    /// The adapter's name.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.lab.edited.adapter_name()
    }

    /// The kernel files by op family, as JSON: `[{family, file, kernels: [entry…]}]`
    /// (common.wgsl, which every file starts with, first).
    pub fn files() -> String {
        let mut files = vec![json!({ "family": "common", "file": COMMON.name, "kernels": [] })];
        for family in FAMILIES {
            for shader in family.shaders {
                let kernels: Vec<&str> =
                    family.kernels.iter().filter(|k| k.shader == *shader).map(|k| k.entry).collect();
                files.push(json!({ "family": family.name, "file": shader.name, "kernels": kernels }));
            }
        }
        Value::Array(files).to_string()
    }

    /// The shipped text of file `name` ("" if octconv has no such file).
    pub fn shipped(name: &str) -> String {
        shipped_file(name).map(|f| f.source.to_string()).unwrap_or_default()
    }

    /// Compiles `text` as file `name` (nothing else): JSON of the first error,
    /// located in the user's text, or `null`.
    pub async fn compile(&self, name: &str, text: &str) -> Result<String, JsError> {
        let file = shipped_file(name).ok_or_else(|| JsError::new(&format!("{name} is not one of octconv's files")))?;
        let error = self.lab.compile_error(file, text, &families_of(name)).await;
        Ok(error.as_ref().map(diagnostic_json).unwrap_or(Value::Null).to_string())
    }

    /// Compiles `text` as file `name`, uses it when it compiles, and checks
    /// its families' kernels against the CPU twins and finite differences:
    /// JSON `{compileError, findings: [{passed, text}], passed, failed, seconds}`.
    pub async fn check(&mut self, name: &str, text: &str) -> String {
        report_json(&self.lab.check_without_times(name, text).await)
    }

    /// The kernels of file `name`'s families in use against the shipped
    /// ones at the seed net's shapes: JSON `[{kernel, shippedMs, editedMs, clock}]`.
    pub async fn time(&self, name: &str) -> String {
        let times: Vec<Value> = self
            .lab
            .time(name)
            .await
            .iter()
            .map(|t| {
                json!({ "kernel": t.kernel, "shippedMs": t.shipped * 1e3, "editedMs": t.edited * 1e3, "clock": t.clock.name() })
            })
            .collect();
        Value::Array(times).to_string()
    }

    /// The edited device goes back to the shipped file `name`.
    pub fn reset(&mut self, name: &str) {
        self.lab.forget(name);
    }

    /// Hands over MNIST's training images and labels (gzipped or plain) for `train`.
    #[wasm_bindgen(js_name = setData)]
    pub fn set_data(&mut self, images: &[u8], labels: &[u8]) -> Result<(), JsError> {
        let i = parse_idx(images, "train images").map_err(js_error)?;
        let l = parse_idx(labels, "train labels").map_err(js_error)?;
        let data = Dataset::from_idx(i, l, ["train images", "train labels"]).map_err(js_error)?;
        self.data = Some(data.first(TRAINING_IMAGES.min(data.len())));
        Ok(())
    }

    /// `steps` training steps of the seed net (batch 64) with the shipped and
    /// with the edited kernels: JSON `{shipped: [[step, loss]…], edited, problem}`.
    pub async fn train(&self, steps: usize) -> Result<String, JsError> {
        let data = self.data.as_ref().ok_or_else(|| JsError::new("setData first"))?;
        let comparison = self.lab.train_compare(data, steps).await.map_err(js_error)?;
        Ok(json!({ "shipped": comparison.shipped, "edited": comparison.edited, "problem": comparison.problem() })
            .to_string())
    }
}
