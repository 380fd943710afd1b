// The engine in a Worker, on the threaded build (see web/engine.js): rayon's
// threads are further Workers sharing this one's memory. Calls run one at a
// time, in the order they came.
import init, { Engine, initThreadPool, Progress } from './pkg-threads/octconv.js';

let engine;

// A thread per core, up to eight: each is a Worker with its own instance of
// the module, and the step's ops are too small to split further.
const threads = () => Math.min(navigator.hardwareConcurrency || 1, 8);

async function create(wasmUrl, useGpu, allowSoftware) {
  await init({ module_or_path: wasmUrl });
  await initThreadPool(threads());
  engine = await Engine.create(useGpu, allowSoftware);
}

function call(method, args) {
  if (method === 'create') return create(...args);
  if (method === 'preprocess') return Engine.preprocess(...args);
  return engine[method](...args);
}

// What crosses back to the page: plain values (a Progress is a handle into this Worker's memory).
function plain(result) {
  if (!(result instanceof Progress)) return result;
  const { epoch, done, total, loss, accuracy, samples_per_second } = result;
  result.free();
  return { epoch, done, total, loss, accuracy, samples_per_second };
}

const state = () => engine && {
  gpu: engine.gpu, backend: engine.backend, skippedAdapter: engine.skippedAdapter, alpha: engine.alpha, threads: engine.threads,
};

let queue = Promise.resolve();
self.onmessage = ({ data: { id, method, args } }) => {
  queue = queue.then(async () => {
    try {
      const result = plain(await call(method, args));
      postMessage({ id, result, state: state() });
    } catch (error) {
      postMessage({ id, error: String(error?.message ?? error), state: state() });
    }
  });
};
