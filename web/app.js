// The octconv page: recognise a drawn digit, show the octave feature maps,
// train the net in the page. All engine calls go through one queue, since
// the engine (Rust, &mut self) takes one call at a time; each is awaited, as
// the engine may be in a Worker (web/engine.js).
import { chart } from './chart.js';
import { openEngine } from './engine.js';
import { fetchMnistFile } from './mnist.js';
import { relaxedSimd } from './wasm.js';

const $ = (id) => document.getElementById(id);
let queue = Promise.resolve();
const serially = (task) => (queue = queue.then(task, task));

// `?cpu` forces the WebAssembly CPU path, as a browser without WebGPU gets;
// `?gpu` uses WebGPU even on a software adapter (SwiftShader), which the page
// otherwise passes over for the CPU path: that is several times faster there.
const options = new URLSearchParams(location.search);
const forceCpu = options.has('cpu');
const engine = await openEngine(Boolean(navigator.gpu) && !forceCpu, options.has('gpu'));
// On the CPU path, say which WebAssembly build runs (web/wasm.js).
const backend = engine.gpu ? engine.backend : `${engine.backend}, ${relaxedSimd ? 'relaxed SIMD' : 'SIMD128'}`;
$('backend').textContent = backend;
$('no-webgpu').hidden = engine.gpu;
if (engine.skippedAdapter) {
  $('no-webgpu').innerHTML = `This browser's WebGPU adapter (${engine.skippedAdapter}) is a software rasterizer, ` +
    'so the network runs on the CPU (WebAssembly), which is faster here. <a href="?gpu">Use WebGPU anyway</a>.';
} else if (!engine.gpu && navigator.gpu) {
  $('no-webgpu').textContent = forceCpu
    ? 'WebGPU is switched off (?cpu in the address): the network runs on the CPU (WebAssembly).'
    : 'This browser offers WebGPU but no adapter could be opened, so the network runs on the CPU (WebAssembly).';
}

// Pretrained weights (trained natively with `octconv train`) ship with the page.
const weightsStart = performance.now();
const weights = new Uint8Array(await (await fetch('weights/seed.safetensors')).arrayBuffer());
await engine.loadWeights(weights);
const weightsMs = performance.now() - weightsStart;
$('weights-status').textContent = `· pretrained weights loaded in ${weightsMs.toFixed(0)} ms`;

// ---- Recognise ---------------------------------------------------------------
const pad = $('pad');
const padContext = pad.getContext('2d', { willReadFrequently: true });
function clearPad() {
  padContext.fillStyle = 'white';
  padContext.fillRect(0, 0, pad.width, pad.height);
}
clearPad();

let drawing = false;
let last = null;
function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}
function stroke(to) {
  padContext.strokeStyle = 'black';
  padContext.lineWidth = 20;
  padContext.lineCap = 'round';
  padContext.lineJoin = 'round';
  padContext.beginPath();
  padContext.moveTo(...(last ?? to));
  padContext.lineTo(...to);
  padContext.stroke();
  last = to;
}
pad.addEventListener('pointerdown', (e) => { drawing = true; last = null; pad.setPointerCapture(e.pointerId); stroke(point(e)); scheduleRecognise(); });
pad.addEventListener('pointermove', (e) => { if (drawing) { stroke(point(e)); scheduleRecognise(); } });
pad.addEventListener('pointerup', () => { drawing = false; scheduleRecognise(); });
$('clear').addEventListener('click', () => { clearPad(); showProbabilities(null); });

let timer = null;
function scheduleRecognise() {
  clearTimeout(timer);
  timer = setTimeout(() => recognise(), 120);
}

// Ten rows: digit, bar, percentage.
const bars = [];
for (let d = 0; d < 10; d++) {
  const label = document.createElement('span');
  label.textContent = d;
  const track = document.createElement('div');
  track.className = 'bar-track';
  const bar = document.createElement('div');
  bar.className = 'bar';
  track.append(bar);
  const value = document.createElement('span');
  $('bars').append(label, track, value);
  bars.push({ bar, value });
}
function showProbabilities(probabilities) {
  bars.forEach(({ bar, value }, d) => {
    const p = probabilities ? probabilities[d] : 0;
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    value.textContent = probabilities ? `${(100 * p).toFixed(1)}%` : '';
  });
  $('prediction').textContent = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : '–';
}

function showInput(pixels) {
  const context = $('input28').getContext('2d');
  const image = context.createImageData(28, 28);
  pixels.forEach((v, i) => {
    image.data.set([255 * v, 255 * v, 255 * v, 255], 4 * i);
  });
  context.putImageData(image, 0, 0);
}

// The pad as the net sees it, its prediction, and the octave feature maps.
async function recognise() {
  return serially(async () => {
    const image = padContext.getImageData(0, 0, pad.width, pad.height);
    const pixels = await engine.preprocess(image.data, pad.width, pad.height);
    showInput(pixels);
    const probabilities = Array.from(await engine.predict(pixels));
    showProbabilities(probabilities);
    await showFeatureMaps();
    return probabilities.indexOf(Math.max(...probabilities));
  });
}

// ---- Octave view ---------------------------------------------------------------
// Built for the recognising net's feature maps (again when trained weights of another alpha are used).
async function buildMapGroups() {
  const names = await engine.featureNames();
  const shapes = await Promise.all(names.map((_, index) => engine.featureShape(index)));
  $('maps').replaceChildren();
  return names.map((name, index) => {
    const [channels, height, width] = Array.from(shapes[index]);
    const branch = name.endsWith('high') ? 'high' : 'low';
    const group = document.createElement('div');
    group.className = `map-group ${branch}`;
    const title = document.createElement('h3');
    title.innerHTML = `${name.split('.')[0]} ${branch === 'high' ? 'H' : 'L'} <span>(${channels} maps, ${height}×${width})</span>`;
    const grid = document.createElement('div');
    grid.className = 'map-grid';
    const canvases = [];
    for (let c = 0; c < channels; c++) {
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      grid.append(canvas);
      canvases.push(canvas);
    }
    group.append(title, grid);
    $('maps').append(group);
    return { index, height, width, canvases };
  });
}
let mapGroups = await buildMapGroups();

async function showFeatureMaps() {
  for (const { index, height, width, canvases } of mapGroups) {
    const values = await engine.featureMap(index);
    const plane = height * width;
    canvases.forEach((canvas, c) => {
      const slice = values.subarray(c * plane, (c + 1) * plane);
      let low = Infinity, high = -Infinity;
      for (const v of slice) { low = Math.min(low, v); high = Math.max(high, v); }
      const scale = high > low ? 255 / (high - low) : 0;
      const context = canvas.getContext('2d');
      const image = context.createImageData(width, height);
      slice.forEach((v, i) => image.data.set([(v - low) * scale, (v - low) * scale, (v - low) * scale, 255], 4 * i));
      context.putImageData(image, 0, 0);
    });
  }
}

// ---- Train ---------------------------------------------------------------------
const log = [];   // {epoch, fraction, loss, accuracy, samplesPerSecond}
let running = false;
let dataLoaded = false;
let trainingStarted = false;

async function loadData() {
  if (dataLoaded) return;
  $('train-status').textContent = 'Loading MNIST…';
  const names = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
  const files = await Promise.all(names.map(fetchMnistFile));
  await serially(() => engine.setData(...files));
  dataLoaded = true;
}

function drawChart(canvas, key, color, low, high) {
  const span = Math.max(1, ...log.map((p) => p.epoch + p.fraction));
  const line = chart(canvas, low, high, `${span.toFixed(2)} epochs`);
  line(log.map((p) => [(p.epoch + p.fraction) / span, p[key]]), color);
}

function settings() {
  return {
    epochs: Number($('epochs').value),
    batch: Number($('batch').value),
    lr: Number($('lr').value),
    limit: Number($('limit').value),
    alpha: Number($('alpha').value),
  };
}

async function trainLoop({ epochs }) {
  while (running) {
    const p = await serially(() => engine.trainSteps(5));
    log.push({ epoch: p.epoch, fraction: p.done / p.total, loss: p.loss, accuracy: p.accuracy, samplesPerSecond: p.samples_per_second });
    const maxLoss = Math.max(2.5, ...log.map((q) => q.loss));
    drawChart($('loss-chart'), 'loss', '#2f6fde', 0, maxLoss);
    drawChart($('accuracy-chart'), 'accuracy', '#d9822b', 0, 1);
    $('train-status').textContent =
      `epoch ${p.epoch + 1}/${epochs}: ${p.done}/${p.total} images · loss ${p.loss.toFixed(4)} · ` +
      `accuracy ${p.accuracy.toFixed(4)} · ${p.samples_per_second.toFixed(0)} samples/s`;
    if (p.done === p.total && p.epoch + 1 >= epochs) {
      running = false;
      $('start').textContent = 'Start';
      $('train-status').textContent += ' · testing…';
      const accuracy = await serially(() => engine.testAccuracy());
      $('train-status').textContent = $('train-status').textContent.replace('testing…', `test accuracy ${accuracy.toFixed(4)}`);
      window.octconv.testAccuracy = accuracy;
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
}

async function startOrPause(options = settings()) {
  if (running) {
    running = false;
    $('start').textContent = 'Resume';
    return;
  }
  await loadData();
  if (!trainingStarted) {
    await serially(() => engine.startTraining(options.batch, options.lr, BigInt(1), options.limit, options.alpha));
    trainingStarted = true;
    $('use-weights').disabled = false;
  }
  running = true;
  $('start').textContent = 'Pause';
  trainLoop(options);
}
$('start').addEventListener('click', () => startOrPause().catch((e) => { $('train-status').textContent = `${e}`; }));
$('benchmark').addEventListener('click', async () => {
  $('benchmark').disabled = true;
  $('train-status').textContent = `Timing training steps on ${backend} (batch 64, real MNIST)…`;
  try {
    const ms = await window.octconv.benchmark();
    $('train-status').textContent = `${backend}: ${ms.toFixed(1)} ms a training step at batch 64 ` +
      `(median of 5 rounds of 3 steps after a warm-up round; ${(64000 / ms).toFixed(0)} samples/s).`;
  } catch (e) {
    $('train-status').textContent = `${e}`;
  }
  $('benchmark').disabled = false;
});
$('use-weights').addEventListener('click', async () => {
  await serially(() => engine.useTrainedWeights());
  mapGroups = await buildMapGroups();
  $('weights-status').textContent = `· using the weights trained in this page (alpha ${engine.alpha})`;
  recognise();
});

// Hooks for the end-to-end test and for experimenting from the console.
window.octconv = {
  ready: true,
  backend,
  skippedAdapter: engine.skippedAdapter,
  gpu: engine.gpu,
  threads: engine.threads,
  weightsMs,
  log,
  recognise,
  // Paints a 28×28 grayscale digit (white on black, 0–255) onto the pad as dark ink, like a pen would.
  async drawDigit(pixels) {
    clearPad();
    const cell = pad.width / 28;
    pixels.forEach((v, i) => {
      if (v === 0) return;
      const shade = 255 - v;
      padContext.fillStyle = `rgb(${shade},${shade},${shade})`;
      padContext.fillRect((i % 28) * cell, Math.floor(i / 28) * cell, cell, cell);
    });
    return recognise();
  },
  train: (options) => startOrPause({ ...settings(), ...options }),
  // Median milliseconds per training step (batch 64, real MNIST), as the Benchmark button measures.
  async benchmark({ batch = 64, rounds = 5, steps = 3 } = {}) {
    await loadData();
    return serially(() => engine.benchmarkStep(batch, rounds, steps));
  },
  pause: () => { if (running) startOrPause(); },
};
