// The engine the page talks to, in one of two places:
// - in a Worker on a threaded build (web/engine-worker.js; relaxed SIMD or
//   SIMD128, as web/wasm.js chooses), where the page is cross-origin
//   isolated (`octconv serve` sends COOP and COEP) and web/build.sh made it:
//   the CPU path splits its ops over the machine's cores, and training never
//   holds up the page. It has to be a Worker: the threads wait on each
//   other, which the page's own thread may not.
// - in the page on the single-threaded build, everywhere else.
// Both answer the same calls; await each (the Worker's are all asynchronous).
import { threadedWasmUrl, wasmUrl } from './wasm.js';

export async function openEngine(useGpu, allowSoftware) {
  if (globalThis.crossOriginIsolated) {
    try {
      return await WorkerEngine.open(useGpu, allowSoftware);
    } catch (error) {
      console.warn(`no threaded engine (${error.message}); running the single-threaded one in the page`);
    }
  }
  const { default: init, Engine } = await import('./pkg/octconv.js');
  await init({ module_or_path: wasmUrl });
  const engine = await Engine.create(useGpu, allowSoftware);
  engine.preprocess = (...args) => Engine.preprocess(...args);
  return engine;
}

// Engine's methods, called by name in the Worker.
const METHODS = ['preprocess', 'loadWeights', 'predict', 'featureNames', 'featureShape', 'featureMap', 'setData',
  'startTraining', 'trainSteps', 'testAccuracy', 'useTrainedWeights', 'benchmarkStep'];

class WorkerEngine {
  static async open(useGpu, allowSoftware) {
    const engine = new WorkerEngine(new Worker(new URL('./engine-worker.js', import.meta.url), { type: 'module' }));
    try {
      // The page picks the build (web/wasm.js), so that the Worker runs what the page says it runs.
      await engine.call('create', [threadedWasmUrl.href, useGpu, allowSoftware]);
    } catch (error) {
      engine.worker.terminate();
      throw error;
    }
    return engine;
  }

  constructor(worker) {
    this.worker = worker;
    this.pending = new Map();
    this.nextId = 0;
    // Answers come in call order, each with the engine's getters (gpu, backend, …) as they now are.
    worker.onmessage = ({ data: { id, result, error, state } }) => {
      Object.assign(this, state);
      const { resolve, reject } = this.pending.get(id);
      this.pending.delete(id);
      if (error === undefined) resolve(result); else reject(new Error(error));
    };
    // A Worker that cannot load (no web/pkg-threads) or dies fails every call waiting on it.
    worker.onerror = (event) => {
      for (const { reject } of this.pending.values()) reject(new Error(`the engine's Worker failed: ${event.message ?? 'it did not load'}`));
      this.pending.clear();
    };
  }

  call(method, args) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args });
    });
  }
}
for (const method of METHODS) {
  WorkerEngine.prototype[method] = function (...args) { return this.call(method, args); };
}
