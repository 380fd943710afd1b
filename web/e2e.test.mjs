// End-to-end: the page in headless Chromium with WebGPU (SwiftShader here).
// Starts `octconv serve`, asserts the engine runs on WebGPU, draws real MNIST
// test digits onto the canvas and checks the predictions, trains a few steps
// in the page and checks the loss falls, drives the shader lab, and takes screenshots.
//
//   node --test web/e2e.test.mjs      (after web/build.sh and cargo build --release)
//
// MNIST comes from OCTCONV_MNIST (default ../shared/data/mnist, then data/mnist).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { deflateRawSync, gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The folder with MNIST's test files, gzipped (as the mirrors serve them) or plain (as the pip route leaves them).
const mnist = [process.env.OCTCONV_MNIST, path.join(root, '../shared/data/mnist'), path.join(root, 'data/mnist')]
  .find((dir) => dir && ['', '.gz'].some((ext) => existsSync(path.join(dir, `t10k-images-idx3-ubyte${ext}`))));
const port = 18000 + (process.pid % 1000);
const url = `http://127.0.0.1:${port}/`;
const DIGITS = 20;

let server, browser, page;
const consoleLines = [];

function readIdx(file) {
  const gz = path.join(mnist, file);
  const bytes = existsSync(gz) ? gunzipSync(readFileSync(gz)) : readFileSync(gz.replace(/\.gz$/, ''));
  const dims = bytes[3];
  return { count: bytes.readUInt32BE(4), data: bytes.subarray(4 + 4 * dims) };
}

before(async () => {
  assert.ok(mnist, 'MNIST files not found: set OCTCONV_MNIST to the folder with t10k-images-idx3-ubyte.gz');
  const binary = path.join(root, 'target/release/octconv');
  server = spawn(binary, ['serve', '--port', String(port), '--data', mnist, '--web', path.join(root, 'web')], { stdio: 'inherit' });
  for (let i = 0; ; i++) {
    try { if ((await fetch(url)).ok) break; } catch { /* not listening yet */ }
    if (i > 100) throw new Error('octconv serve did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 1500 } });
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  // SwiftShader is a software adapter: the page would take the CPU path without ?gpu.
  await page.goto(`${url}?gpu`);
  await page.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 }).catch((e) => {
    throw new Error(`${e.message}\npage console:\n${consoleLines.join('\n')}`);
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

test('the engine runs on WebGPU and the weights load quickly', async () => {
  const { backend, gpu, weightsMs } = await page.evaluate(() => window.octconv);
  console.log(`# backend: ${backend}; weights loaded in ${weightsMs.toFixed(0)} ms`);
  assert.ok(gpu && backend.startsWith('WebGPU'), `expected WebGPU, got ${backend}`);
  assert.ok(weightsMs < 1000, `weights took ${weightsMs} ms`);
});

test('real MNIST test digits drawn on the canvas are recognised', async () => {
  const images = readIdx('t10k-images-idx3-ubyte.gz');
  const labels = readIdx('t10k-labels-idx1-ubyte.gz');
  let correct = 0;
  const seen = [];
  for (let i = 0; i < DIGITS; i++) {
    const pixels = Array.from(images.data.subarray(i * 784, (i + 1) * 784));
    const predicted = await page.evaluate((p) => window.octconv.drawDigit(p), pixels);
    seen.push(`${labels.data[i]}→${predicted}`);
    if (predicted === labels.data[i]) correct++;
  }
  console.log(`# recognised ${correct}/${DIGITS} drawn test digits: ${seen.join(' ')}`);
  assert.ok(correct >= DIGITS - 2, `only ${correct}/${DIGITS} correct: ${seen.join(' ')}`);
});

test('training in the page lowers the loss', async () => {
  await page.evaluate(() => window.octconv.train({ epochs: 1, batch: 32, lr: 0.002, limit: 2048 }));
  await page.waitForFunction(() => window.octconv.log.length >= 8, null, { timeout: 300_000 });
  await page.evaluate(() => window.octconv.pause());
  const log = await page.evaluate(() => window.octconv.log);
  const first = log[0];
  const last = log[log.length - 1];
  console.log(`# in-page training: loss ${first.loss.toFixed(3)} → ${last.loss.toFixed(3)} after ${Math.round(last.fraction * 2048)} images, ` +
    `${last.samplesPerSecond.toFixed(1)} samples/s`);
  assert.ok(last.loss < 0.8 * first.loss, `loss did not fall: ${first.loss} → ${last.loss}`);
});

test('without WebGPU the CPU path (WebAssembly) still recognises digits', async () => {
  const cpuPage = await browser.newPage();
  await cpuPage.goto(`${url}?cpu`);
  await cpuPage.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  const { backend, gpu } = await cpuPage.evaluate(() => window.octconv);
  assert.ok(!gpu && backend.startsWith('CPU'), `expected the CPU path, got ${backend}`);
  // Chromium has relaxed SIMD, so it gets that build (web/wasm.js).
  assert.ok(backend.endsWith('relaxed SIMD'), `expected the relaxed-SIMD build, got ${backend}`);
  // Served cross-origin isolated (octconv serve sends COOP and COEP), the engine runs in a Worker on
  // the threaded build (web/engine.js), a thread per core. web/build.sh makes that build where it can;
  // CI requires it (OCTCONV_REQUIRE_THREADS).
  const { threads, cores, isolated } = await cpuPage.evaluate(() =>
    ({ threads: window.octconv.threads, cores: navigator.hardwareConcurrency, isolated: crossOriginIsolated }));
  assert.ok(isolated, 'the page is not cross-origin isolated: octconv serve must send COOP and COEP');
  const threadedBuild = existsSync(path.join(root, 'web/pkg-threads/octconv.js'));
  if (process.env.OCTCONV_REQUIRE_THREADS) assert.ok(threadedBuild, 'web/build.sh made no threaded build (web/pkg-threads)');
  if (threadedBuild) {
    assert.equal(threads, Math.min(cores, 8), `the threaded engine should use all ${cores} cores, up to 8 (${backend})`);
    if (cores > 1) assert.ok(backend.includes(`${cores} threads`), backend);
  }
  assert.ok(await cpuPage.isVisible('#no-webgpu'), 'the page says plainly that WebGPU is not used');
  const images = readIdx('t10k-images-idx3-ubyte.gz');
  const labels = readIdx('t10k-labels-idx1-ubyte.gz');
  let correct = 0;
  for (let i = 0; i < 5; i++) {
    const pixels = Array.from(images.data.subarray(i * 784, (i + 1) * 784));
    if ((await cpuPage.evaluate((p) => window.octconv.drawDigit(p), pixels)) === labels.data[i]) correct++;
  }
  console.log(`# CPU path (${backend}): recognised ${correct}/5`);
  assert.ok(correct >= 4, `only ${correct}/5 on the CPU path`);
  await cpuPage.close();
});

test('without its threaded build the isolated page runs the single-threaded engine, and says why in the console', async () => {
  const fallback = await browser.newPage();
  const warnings = [];
  fallback.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  await fallback.route('**/pkg-threads/**', (route) => route.fulfill({ status: 404, body: 'not built' }));
  await fallback.goto(`${url}?cpu`);
  await fallback.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  const { backend, threads } = await fallback.evaluate(() => window.octconv);
  assert.equal(threads, 1, backend);
  assert.ok(warnings.some((w) => w.includes('no threaded engine')), warnings.join('\n'));
  const images = readIdx('t10k-images-idx3-ubyte.gz');
  const labels = readIdx('t10k-labels-idx1-ubyte.gz');
  const pixels = Array.from(images.data.subarray(0, 784));
  assert.equal(await fallback.evaluate((p) => window.octconv.drawDigit(p), pixels), labels.data[0]);
  await fallback.close();
});

test('on a software WebGPU adapter the page takes the CPU path by default, and says so', async () => {
  const plain = await browser.newPage();
  await plain.goto(url);
  await plain.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  const { backend, skippedAdapter } = await plain.evaluate(() => window.octconv);
  console.log(`# default page: ${backend} (passed over: ${skippedAdapter || 'nothing'})`);
  // SwiftShader reports itself as a CPU device; a hardware adapter would be used.
  assert.ok(skippedAdapter && backend.startsWith('CPU'), `expected the CPU path, got ${backend}`);
  const note = await plain.textContent('#no-webgpu');
  assert.ok(note.includes('software rasterizer') && note.includes('Use WebGPU anyway'), note);
  await plain.close();
});

test('a net of another alpha trains in the page and then recognises with its own feature maps', async () => {
  const other = await browser.newPage();
  // As a browser without relaxed SIMD: the page must load the plain SIMD128 build.
  await other.addInitScript(() => { WebAssembly.validate = () => false; });
  await other.goto(`${url}?cpu`);
  await other.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  const { backend } = await other.evaluate(() => window.octconv);
  assert.ok(backend.endsWith('SIMD128'), `expected the SIMD128 build, got ${backend}`);
  // Its threads run the threaded SIMD128 build.
  const { threads, cores } = await other.evaluate(() => ({ threads: window.octconv.threads, cores: navigator.hardwareConcurrency }));
  if (existsSync(path.join(root, 'web/pkg-threads/octconv_bg.wasm'))) assert.equal(threads, Math.min(cores, 8));
  await other.evaluate(() => window.octconv.train({ epochs: 1, limit: 256, batch: 32, alpha: 0 }));
  await other.waitForFunction(() => window.octconv.testAccuracy !== undefined, null, { timeout: 300_000 });
  await other.click('#use-weights');
  await other.waitForFunction(() => document.querySelector('#weights-status').textContent.includes('alpha 0'));
  // The plain CNN (alpha 0) has no low-frequency branch: only conv1 H and conv2 H maps.
  const groups = await other.$$eval('#maps .map-group', (g) => g.map((e) => e.className));
  assert.deepEqual(groups, ['map-group high', 'map-group high']);
  await other.close();
});

// The shader lab, as a visitor uses it: on elementwise.wgsl (relu, add, accumulate: quick on SwiftShader).
const LAB_FILE = 'elementwise.wgsl';
const KEPT = '// kept by the end-to-end test';

test('the shader lab: errors at their line, a wrong kernel fails, a right one passes, is timed, trains, is kept and shared', async () => {
  const lab = await browser.newPage({ viewport: { width: 1100, height: 1500 } });
  lab.on('pageerror', (e) => consoleLines.push(`lab pageerror: ${e.message}`));
  await lab.goto(url);
  await lab.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  const fetchedEditor = () => performance.getEntriesByType('resource').some((r) => r.name.includes('/node_modules/'));
  assert.ok(!(await lab.evaluate(fetchedEditor)), 'the editor is not fetched before the lab is opened');
  await lab.click('#lab-open');
  await lab.waitForFunction(() => window.octconvLab.ready, null, { timeout: 120_000 });
  assert.equal(await lab.evaluate(() => window.octconvLab.editor), 'CodeMirror');
  assert.ok(await lab.evaluate(fetchedEditor), 'the editor is fetched when the lab opens');
  await lab.evaluate((f) => window.octconvLab.select(f), LAB_FILE);
  const shipped = await lab.evaluate(() => window.octconvLab.getText());
  const lines = shipped.split('\n');

  // A syntax error on line 8 of the user's text is shown at line 8 (not shifted by common.wgsl).
  const broken = [...lines.slice(0, 7), 'let = oops;', ...lines.slice(7)].join('\n');
  await lab.evaluate((t) => window.octconvLab.setText(t), broken);
  const error = await lab.evaluate(() => window.octconvLab.compile());
  console.log(`# lab: syntax error reported at ${error?.file}:${error?.line}:${error?.column}: ${error?.message}`);
  assert.equal(error?.file, LAB_FILE);
  assert.equal(error?.line, 8);
  await lab.waitForSelector('.cm-lintRange-error', { timeout: 5_000 });
  assert.ok(await lab.isVisible('#lab-error'));

  // Valid but wrong: relu leaks 0.01 for negative inputs; the check fails and says where.
  const wrong = shipped.replace('max(a[index], 0.0)', 'max(a[index], 0.01)');
  assert.notEqual(wrong, shipped);
  await lab.evaluate((t) => window.octconvLab.setText(t), wrong);
  const failed = await lab.evaluate(() => window.octconvLab.check());
  const firstFailure = failed.findings.find((f) => !f.passed)?.text;
  console.log(`# lab: wrong relu: ${failed.passed} passed, ${failed.failed} failed; first: ${firstFailure}`);
  assert.ok(failed.failed > 0 && /relu_forward/.test(firstFailure), firstFailure);
  assert.match(await lab.textContent('#lab-badge'), /^FAIL/);

  // A correct version (the shipped text with a comment) passes, is timed and trains.
  await lab.evaluate((t) => window.octconvLab.setText(t), `${KEPT}\n${shipped}`);
  const passed = await lab.evaluate(() => window.octconvLab.check());
  console.log(`# lab: restored: ${passed.passed} passed, ${passed.failed} failed in ${passed.seconds.toFixed(1)} s`);
  assert.equal(passed.failed, 0);
  assert.ok(passed.passed > 0);
  assert.match(await lab.textContent('#lab-badge'), /^PASS/);
  const times = await lab.evaluate(() => window.octconvLab.time());
  console.log(`# lab: times ${times.map((t) => `${t.kernel} ${t.shippedMs.toFixed(3)}/${t.editedMs.toFixed(3)} ms`).join(', ')} (${times[0]?.clock})`);
  assert.ok(times.length > 0 && times.every((t) => t.shippedMs > 0 && t.editedMs > 0));
  const trained = await lab.evaluate(() => window.octconvLab.train(20));
  const [shippedEnd, editedEnd] = [trained.shipped.at(-1), trained.edited.at(-1)];
  console.log(`# lab: 20 steps: loss ${shippedEnd?.[1].toFixed(4)} shipped, ${editedEnd?.[1].toFixed(4)} edited`);
  assert.equal(editedEnd?.[0], 20);
  assert.equal(trained.problem, null);
  assert.ok(Math.abs(editedEnd[1] - shippedEnd[1]) < 0.05, 'the same kernels train the same');
  await lab.locator('#lab').screenshot({ path: path.join(root, 'web/lab-screenshot.png') });

  // Download saves the file under its own name, for `octconv lab --watch`.
  const [download] = await Promise.all([lab.waitForEvent('download'), lab.click('#lab-download')]);
  assert.equal(download.suggestedFilename(), LAB_FILE);
  assert.equal(readFileSync(await download.path(), 'utf8'), `${KEPT}\n${shipped}`);
  // A dropped .wgsl file opens as the file of its name.
  const poolText = await lab.evaluate(async (kept) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([`${kept}\n// dropped`], 'pool.wgsl'));
    document.getElementById('lab').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    return [document.getElementById('lab-file').value, window.octconvLab.getText()];
  }, KEPT);
  assert.deepEqual(poolText, ['pool.wgsl', `${KEPT}\n// dropped`]);
  await lab.evaluate((f) => window.octconvLab.select(f), LAB_FILE);

  // Kept over a reload.
  await lab.reload();
  await lab.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  await lab.evaluate(() => window.octconvLab.open());
  const kept = await lab.evaluate(() => window.octconvLab.getText());
  assert.ok(kept.startsWith(KEPT), 'the edit is kept after a reload');

  // A share link opens the same kernel in a fresh browser context (no localStorage).
  const link = await lab.evaluate(() => window.octconvLab.shareLink());
  console.log(`# lab: share link of ${link.length} characters`);
  const fresh = await browser.newContext();
  const other = await fresh.newPage();
  await other.goto(link);
  await other.waitForFunction(() => window.octconvLab?.ready, null, { timeout: 180_000 });
  assert.equal(await other.evaluate(() => window.octconvLab.getText()), `${KEPT}\n${shipped}`);
  assert.equal(await other.inputValue('#lab-file'), LAB_FILE);
  await fresh.close();
  await lab.close();
});

test('the shader lab falls back to a plain textarea when the editor cannot load, and says when WebGPU is missing', async () => {
  const context = await browser.newContext();
  const plain = await context.newPage();
  await plain.route('**/node_modules/**', (route) => route.abort());
  await plain.goto(url);
  await plain.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  await plain.evaluate(() => window.octconvLab.open());
  assert.equal(await plain.evaluate(() => window.octconvLab.editor), 'textarea');
  assert.ok((await plain.inputValue('#lab-editor textarea')).includes('@compute'));
  // Typing the shipped text back after checking an edit puts the shipped kernel back in use before timing.
  const rechecked = await plain.evaluate(async ([file, kept]) => {
    const lab = window.octconvLab;
    lab.select(file);
    const shipped = lab.getText();
    lab.setText(`${kept}\n${shipped}`);
    const edited = await lab.check();
    lab.setText(shipped);
    await lab.time();
    return edited.failed === 0 && lab.lastReport !== edited && lab.lastReport.failed === 0;
  }, [LAB_FILE, KEPT]);
  assert.ok(rechecked, 'the shipped text was checked (and so used) again before timing');
  // A share link that unpacks into 20 MB is refused with a sentence, not inflated.
  const bomb = deflateRawSync(Buffer.alloc(20 << 20, 0x20)).toString('base64url');
  const hostile = await context.newPage();
  await hostile.goto(`${url}#lab=${bomb}`);
  await hostile.waitForFunction(() => window.octconvLab?.ready, null, { timeout: 180_000 });
  const said = await hostile.textContent('#lab-status');
  assert.match(said, /shared link could not be read \(it unpacks to more than the 1048576 bytes a link may hold\)/);
  // Without WebGPU the lab says so plainly; the kernels can still be read and downloaded.
  const noGpu = await context.newPage();
  await noGpu.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
  await noGpu.goto(url);
  await noGpu.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  await noGpu.evaluate(() => window.octconvLab.open());
  assert.ok(await noGpu.isVisible('#lab-no-webgpu'), 'the lab says it needs WebGPU');
  assert.ok(await noGpu.isDisabled('#lab-check'));
  assert.ok((await noGpu.evaluate(() => window.octconvLab.getText())).includes('@compute'));
  await context.close();
});

// The page's own benchmark: batch 64, real MNIST, a warm-up round, then the median; on both paths.
test('the in-page step benchmark, WebGPU and the CPU path', async () => {
  const gpuMs = await page.evaluate(() => window.octconv.benchmark());
  const cpuPage = await browser.newPage();
  await cpuPage.goto(`${url}?cpu`);
  await cpuPage.waitForFunction(() => window.octconv?.ready, null, { timeout: 180_000 });
  const cpuMs = await cpuPage.evaluate(() => window.octconv.benchmark());
  const cpuBackend = await cpuPage.evaluate(() => window.octconv.backend);
  await cpuPage.close();
  console.log(`# in-page benchmark, batch 64: WebGPU (SwiftShader) ${gpuMs.toFixed(1)} ms a step, ${cpuBackend} ${cpuMs.toFixed(1)} ms a step`);
  assert.ok(gpuMs > 0 && cpuMs > 0);
});

test('screenshot of the page', async () => {
  // Draw one more digit so the Recognise and Octave panels are filled in the picture.
  const images = readIdx('t10k-images-idx3-ubyte.gz');
  await page.evaluate((p) => window.octconv.drawDigit(p), Array.from(images.data.subarray(0, 784)));
  const file = path.join(root, 'web/screenshot.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot: ${file}`);
});
