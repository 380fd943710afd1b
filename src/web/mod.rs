//! The browser API (wasm-bindgen) over the engine, used by `web/app.js`
//! (recognise, train) and `web/lab.js` (the shader lab, in `lab`).
//! Every GPU read-back is awaited; nothing blocks the page.

mod lab;

/// `initThreadPool(n)` for the page's threaded build: starts rayon's `n`
/// threads on Web Workers (web/engine-worker.js awaits it before `create`).
#[cfg(target_feature = "atomics")]
pub use wasm_bindgen_rayon::init_thread_pool;

use wasm_bindgen::prelude::*;

use crate::checkpoint;
use crate::data::{parse_idx, to_mnist_input, Dataset, PIXELS};
use crate::exec::{self, now, Device, DeviceData, Metrics, Runner};
use crate::gpu::{AdapterChoice, Gpu};
use crate::nn::{checked_alpha, ParamSet, SeedNet, CLASSES};
use crate::optim::AdamConfig;
use crate::train::{evaluate, seconds_per_step, softmax_rows, EpochCursor};

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Training state kept between `train_steps` calls.
struct Training {
    /// The net being trained (its alpha may differ from the predictor's).
    net: SeedNet,
    runner: Runner,
    /// Where training is in the first `limit` training images (on the runner's device).
    cursor: EpochCursor,
    /// The test set on the runner's device, once asked for.
    test: Option<DeviceData>,
    started: f64,
    samples_done: usize,
}

/// The engine as the page sees it: a device, a predictor (batch 1) and,
/// while training, a trainer.
#[wasm_bindgen]
pub struct Engine {
    device: Device,
    /// The software WebGPU adapter passed over for the CPU path, if one was.
    skipped_adapter: Option<String>,
    net: SeedNet,
    params: ParamSet,
    predictor: Runner,
    training: Option<Training>,
    train_data: Option<Dataset>,
    test_data: Option<Dataset>,
}

/// One progress report of `train_steps`.
#[wasm_bindgen(getter_with_clone)]
pub struct Progress {
    pub epoch: usize,
    /// Examples done in this epoch, and the epoch's size.
    pub done: usize,
    pub total: usize,
    /// Running loss and accuracy of this epoch so far.
    pub loss: f64,
    pub accuracy: f64,
    pub samples_per_second: f64,
}

#[wasm_bindgen]
impl Engine {
    /// Opens WebGPU when the browser has it and `use_gpu` is set, else the
    /// CPU path compiled to WebAssembly. A software adapter (SwiftShader) is
    /// passed over for the CPU path, which is several times faster on the same
    /// cores, unless `allow_software`. Starts with freshly initialised weights.
    pub async fn create(use_gpu: bool, allow_software: bool) -> Engine {
        console_error_panic_hook::set_once();
        let mut skipped_adapter = None;
        let device = if use_gpu {
            match Gpu::new(&AdapterChoice::default()).await {
                Ok(gpu) if gpu.info.device_type == wgpu::DeviceType::Cpu && !allow_software => {
                    skipped_adapter = Some(gpu.adapter_name());
                    Device::Cpu
                }
                Ok(gpu) => Device::Gpu(std::rc::Rc::new(gpu)),
                Err(e) => {
                    web_sys::console::warn_1(&format!("no WebGPU ({e}); using the CPU").into());
                    Device::Cpu
                }
            }
        } else {
            Device::Cpu
        };
        let net = SeedNet::new();
        let params = ParamSet::init(&net.params(), 1);
        let predictor = Self::predictor(&device, &net, &params).await.expect("the seed net compiles");
        Engine { device, skipped_adapter, net, params, predictor, training: None, train_data: None, test_data: None }
    }

    async fn predictor(device: &Device, net: &SeedNet, params: &ParamSet) -> Result<Runner, JsError> {
        let model = net.graph(1, false, device.conv_lowering()).map_err(js_error)?;
        exec::compile(device, model, params, AdamConfig::default()).await.map_err(js_error)
    }

    /// Whether the engine runs on WebGPU.
    #[wasm_bindgen(getter)]
    pub fn gpu(&self) -> bool {
        matches!(self.device, Device::Gpu(_))
    }

    /// The software WebGPU adapter passed over for the CPU path ("" if none was).
    #[wasm_bindgen(getter, js_name = skippedAdapter)]
    pub fn skipped_adapter(&self) -> String {
        self.skipped_adapter.clone().unwrap_or_default()
    }

    /// "WebGPU: <adapter>", or "CPU (WebAssembly)" with the threads of the threaded build.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match &self.device {
            Device::Gpu(gpu) => format!("WebGPU: {}", gpu.adapter_name()),
            Device::Cpu if self.threads() > 1 => format!("CPU (WebAssembly, {} threads)", self.threads()),
            Device::Cpu => "CPU (WebAssembly)".to_string(),
        }
    }

    /// Threads the CPU path works on: rayon's pool in the threaded build, else 1.
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        crate::ops::fast_cpu::workers()
    }

    /// Loads a safetensors checkpoint (PyTorch state_dict names) for recognition.
    #[wasm_bindgen(js_name = loadWeights)]
    pub fn load_weights(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let file = checkpoint::from_bytes(bytes, "weights").map_err(js_error)?;
        self.params = file.params_for(&self.net.params(), "weights").map_err(js_error)?;
        self.predictor.load_params(&self.params).map_err(js_error)
    }

    /// RGBA canvas pixels (dark ink on white, or white on black) as the 784
    /// MNIST-style inputs the net sees.
    pub fn preprocess(rgba: &[u8], width: usize, height: usize) -> Vec<f32> {
        let gray: Vec<f32> = rgba
            .chunks_exact(4)
            .map(|p| {
                let luma = (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0;
                // Transparent pixels count as the white paper.
                let alpha = p[3] as f32 / 255.0;
                luma * alpha + (1.0 - alpha)
            })
            .collect();
        // An empty pad is an empty frame.
        to_mnist_input(&gray, width, height).unwrap_or_else(|| vec![0.0; PIXELS])
    }

    /// The ten class probabilities for one 784-pixel input.
    pub async fn predict(&mut self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        if pixels.len() != PIXELS {
            return Err(JsError::new(&format!("predict needs {PIXELS} pixels, got {}", pixels.len())));
        }
        self.predictor.write_batch(&pixels, &[-1.0]).map_err(js_error)?;
        self.predictor.forward();
        let logits = self.predictor.read(self.predictor.model().logits).await.map_err(js_error)?;
        Ok(softmax_rows(&logits.data, CLASSES))
    }

    /// Names of the feature maps `featureMap` returns: conv1.high, conv1.low, conv2.high, conv2.low.
    #[wasm_bindgen(js_name = featureNames)]
    pub fn feature_names(&self) -> Vec<String> {
        self.predictor.model().features.iter().map(|(name, _)| name.clone()).collect()
    }

    /// [channels, height, width] of feature map `index`.
    #[wasm_bindgen(js_name = featureShape)]
    pub fn feature_shape(&self, index: usize) -> Vec<usize> {
        let model = self.predictor.model();
        model.graph.shape(model.features[index].1)[1..].to_vec()
    }

    /// The values of feature map `index` for the last prediction.
    #[wasm_bindgen(js_name = featureMap)]
    pub async fn feature_map(&self, index: usize) -> Result<Vec<f32>, JsError> {
        let node = self.predictor.model().features[index].1;
        Ok(self.predictor.read(node).await.map_err(js_error)?.data)
    }

    /// Hands over the four MNIST files' bytes (gzipped or plain) for training.
    #[wasm_bindgen(js_name = setData)]
    pub fn set_data(
        &mut self,
        train_images: &[u8],
        train_labels: &[u8],
        test_images: &[u8],
        test_labels: &[u8],
    ) -> Result<(), JsError> {
        let load = |images: &[u8], labels: &[u8], names: [&str; 2]| -> Result<Dataset, JsError> {
            let i = parse_idx(images, names[0]).map_err(js_error)?;
            let l = parse_idx(labels, names[1]).map_err(js_error)?;
            Dataset::from_idx(i, l, names).map_err(js_error)
        };
        self.train_data = Some(load(train_images, train_labels, ["train images", "train labels"])?);
        self.test_data = Some(load(test_images, test_labels, ["test images", "test labels"])?);
        Ok(())
    }

    /// The octave share of the net that recognises digits.
    #[wasm_bindgen(getter)]
    pub fn alpha(&self) -> f64 {
        self.net.alpha
    }

    /// Starts training a net with octave share `alpha` from fresh weights
    /// (seeded), on the first `limit` training images (0 = all).
    #[wasm_bindgen(js_name = startTraining)]
    pub async fn start_training(
        &mut self,
        batch: usize,
        lr: f32,
        seed: u64,
        limit: usize,
        alpha: f64,
    ) -> Result<(), JsError> {
        let data = self.train_data.as_ref().ok_or_else(|| JsError::new("setData first"))?;
        let examples = if limit > 0 { limit.min(data.len()) } else { data.len() };
        if batch == 0 || !lr.is_finite() || lr <= 0.0 {
            return Err(JsError::new("batch must be at least 1 and the learning rate positive"));
        }
        let net = SeedNet::with_alpha(checked_alpha(alpha).map_err(|e| JsError::new(&e))?);
        let model = net.graph(batch, true, self.device.conv_lowering()).map_err(js_error)?;
        let params = ParamSet::init(&net.params(), seed);
        let adam = AdamConfig { lr, ..AdamConfig::default() };
        let mut runner = exec::compile(&self.device, model, &params, adam).await.map_err(js_error)?;
        let train = runner.upload_dataset(&data.first(examples)).await.map_err(js_error)?;
        let cursor = EpochCursor::start(runner.as_mut(), train, seed, 0).map_err(js_error)?;
        self.training = Some(Training { net, runner, cursor, test: None, started: now(), samples_done: 0 });
        Ok(())
    }

    /// Runs up to `steps` training steps (stopping at the end of an epoch)
    /// and reports progress; one read-back per call.
    #[wasm_bindgen(js_name = trainSteps)]
    pub async fn train_steps(&mut self, steps: usize) -> Result<Progress, JsError> {
        let t = self.training.as_mut().ok_or_else(|| JsError::new("startTraining first"))?;
        if t.cursor.epoch_done() {
            t.cursor = t.cursor.next_epoch(t.runner.as_mut()).map_err(js_error)?;
        }
        t.samples_done += t.cursor.steps(t.runner.as_mut(), steps);
        let m: Metrics = t.runner.metrics().await.map_err(js_error)?;
        Ok(Progress {
            epoch: t.cursor.epoch,
            done: t.cursor.position,
            total: t.cursor.data.len,
            loss: m.loss(),
            accuracy: m.accuracy(),
            samples_per_second: t.samples_done as f64 / (now() - t.started).max(1e-9),
        })
    }

    /// Milliseconds per training step of the seed net at `batch` on this
    /// engine's device, on the first real training images: one warm-up round,
    /// then the median of `rounds` rounds of `steps` back-to-back steps (each
    /// round ends with one read-back, which waits for the device). Leaves
    /// the page's own training as it was.
    #[wasm_bindgen(js_name = benchmarkStep)]
    pub async fn benchmark_step(&self, batch: usize, rounds: usize, steps: usize) -> Result<f64, JsError> {
        let data = self.train_data.as_ref().ok_or_else(|| JsError::new("setData first"))?;
        let (steps, batch) = (steps.max(1), batch.max(1));
        let net = SeedNet::new();
        let model = net.graph(batch, true, self.device.conv_lowering()).map_err(js_error)?;
        let params = ParamSet::init(&net.params(), 1);
        let mut runner = exec::compile(&self.device, model, &params, AdamConfig::default()).await.map_err(js_error)?;
        let examples = data.first((steps * batch).min(data.len()));
        let on_device = runner.upload_dataset(&examples).await.map_err(js_error)?;
        runner.set_order(on_device, &(0..examples.len()).collect::<Vec<_>>()).map_err(js_error)?;
        let mut samples = Vec::new();
        for round in 0..=rounds.max(1) {
            let seconds = seconds_per_step(runner.as_mut(), on_device, steps).await.map_err(js_error)?;
            if round > 0 {
                samples.push(seconds * 1e3);
            }
        }
        Ok(exec::median(samples))
    }

    /// Test accuracy of the model being trained.
    #[wasm_bindgen(js_name = testAccuracy)]
    pub async fn test_accuracy(&mut self) -> Result<f64, JsError> {
        let data = self.test_data.as_ref().ok_or_else(|| JsError::new("setData first"))?;
        let t = self.training.as_mut().ok_or_else(|| JsError::new("startTraining first"))?;
        let test = match t.test {
            Some(test) => test,
            None => *t.test.insert(t.runner.upload_dataset(data).await.map_err(js_error)?),
        };
        let m = evaluate(t.runner.as_mut(), test).await.map_err(js_error)?;
        t.runner.reset_metrics();
        Ok(m.accuracy())
    }

    /// Uses the net being trained for recognition from now on (recompiling
    /// the predictor when its alpha differs: the feature maps change too).
    #[wasm_bindgen(js_name = useTrainedWeights)]
    pub async fn use_trained_weights(&mut self) -> Result<(), JsError> {
        let t = self.training.as_ref().ok_or_else(|| JsError::new("startTraining first"))?;
        self.params = t.runner.params().await.map_err(js_error)?;
        if t.net.alpha != self.net.alpha {
            self.net = t.net.clone();
            self.predictor = Self::predictor(&self.device, &self.net, &self.params).await?;
        }
        self.predictor.load_params(&self.params).map_err(js_error)
    }
}
