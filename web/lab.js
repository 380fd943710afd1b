// The shader lab in the page: edit a kernel file, compile it (errors at
// their line in your text), check it against the CPU twins and finite
// differences, time it against the shipped kernel, train with it. The Rust
// side is `LabSession` (src/web/lab.rs, the native lab's loop on two WebGPU
// devices). Nothing here runs, and the editor is not fetched, until the lab
// is opened, so the page's first paint does not wait for it.
import init, { LabSession } from './pkg/octconv.js';
import { chart } from './chart.js';
import { fetchMnistFile } from './mnist.js';

const $ = (id) => document.getElementById(id);
const EDITS = 'octconv.lab.edits';   // localStorage: {file: text} of the files that differ from the shipped ones
const CURRENT = 'octconv.lab.file';  // localStorage: the file last open
const SHARE_PREFIX = '#lab=';
const MAX_TEXT_BYTES = 1 << 20;      // the most a shared link's edits (unpacked) or a dropped file may hold

let session = null;      // LabSession when WebGPU is there
let editor = null;       // { kind, getText, setText, showError }
let files = [];          // [{family, file, kernels}]
let file = null;         // the file in the editor
const inUse = {};        // file -> the text the edited device uses, when not the shipped one (set by a check that compiled)
let opening = null;
let queue = Promise.resolve();
const serially = (task) => (queue = queue.then(task, task));

const edits = () => { try { return JSON.parse(localStorage.getItem(EDITS) ?? '{}'); } catch { return {}; } };
function keepEdit(name, text) {
  const all = edits();
  if (text === LabSession.shipped(name)) delete all[name]; else all[name] = text;
  localStorage.setItem(EDITS, JSON.stringify(all));
}
const status = (text) => { $('lab-status').textContent = text; };
function badge(text, verdict) {
  $('lab-badge').textContent = text;
  $('lab-badge').className = `badge ${verdict ?? ''}`;
}

// ---- The editor: CodeMirror 6 with WGSL highlighting, else a textarea ------------
let settingText = false;
async function makeEditor(host) {
  try {
    const [{ EditorView, basicSetup }, { wgsl }, lint, { keymap }, { Prec }] = await Promise.all([
      import('codemirror'), import('@iizukak/codemirror-lang-wgsl'), import('@codemirror/lint'),
      import('@codemirror/view'), import('@codemirror/state')]);
    const view = new EditorView({
      parent: host,
      extensions: [
        basicSetup, wgsl(), lint.lintGutter(),
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run: () => { check(); return true; } }])),
        EditorView.updateListener.of((update) => { if (update.docChanged && !settingText) changed(); }),
      ],
    });
    return {
      kind: 'CodeMirror',
      getText: () => view.state.doc.toString(),
      setText(text) {
        settingText = true;
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
        settingText = false;
      },
      showError(error) {
        const marks = [];
        if (error && error.line > 0 && error.file === file) {
          const line = view.state.doc.line(Math.min(error.line, view.state.doc.lines));
          const from = Math.min(line.from + Math.max(0, error.column - 1), line.to);
          marks.push({ from, to: Math.min(line.to, from + 1), severity: 'error', message: error.message });
        }
        view.dispatch(lint.setDiagnostics(view.state, marks));
      },
    };
  } catch (e) {
    console.warn(`the editor did not load (${e.message}); the lab uses a plain text area`);
    const area = document.createElement('textarea');
    area.spellcheck = false;
    area.addEventListener('input', () => changed());
    area.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); check(); } });
    host.append(area);
    return { kind: 'textarea', getText: () => area.value, setText: (text) => { area.value = text; }, showError() {} };
  }
}

function showError(error) {
  editor.showError(error);
  $('lab-error').hidden = !error;
  $('lab-error').textContent = error ? error.text : '';
  window.octconvLab.lastError = error;
}

// ---- Files -----------------------------------------------------------------------------
function fillFileChoice() {
  const groups = new Map();
  for (const f of files) {
    if (!groups.has(f.family)) groups.set(f.family, []);
    groups.get(f.family).push(f);
  }
  for (const [family, members] of groups) {
    const group = document.createElement('optgroup');
    group.label = family;
    for (const f of members) group.append(new Option(f.file, f.file));
    $('lab-file').append(group);
  }
}

function showFile(name, text) {
  const entry = files.find((f) => f.file === name) ?? files.find((f) => f.file === 'elementwise.wgsl');
  file = entry.file;
  $('lab-file').value = file;
  $('lab-kernels').textContent = entry.kernels.length
    ? `kernels: ${entry.kernels.join(', ')}` : 'prepended to every kernel file';
  localStorage.setItem(CURRENT, file);
  editor.setText(text ?? edits()[file] ?? LabSession.shipped(file));
  showError(null);
  $('lab-findings').replaceChildren();
  $('lab-times').hidden = true;
  const edited = editor.getText() !== LabSession.shipped(file);
  badge(edited ? 'edited, not checked' : 'shipped', null);
  if (text !== undefined) changed();
}

// ---- Compile, check, time, train ------------------------------------------------------
let compileTimer = null;
function changed() {
  keepEdit(file, editor.getText());
  badge('edited, not checked', null);
  clearTimeout(compileTimer);
  compileTimer = setTimeout(() => compile(), 700);
}

// Compiles the editor's text (nothing else) and shows its first error.
async function compile() {
  if (!session) return null;
  return serially(async () => {
    const error = JSON.parse(await session.compile(file, editor.getText()));
    showError(error);
    if (error) badge('does not compile', 'fail');
    return error;
  });
}

// Compiles, uses (when it compiles) and checks the editor's text.
async function check() {
  if (!session) return null;
  clearTimeout(compileTimer);
  return serially(async () => {
    const text = editor.getText();
    badge('checking…', null);
    status(`checking ${file}: its family's cases against the CPU twins, its gradients against finite differences…`);
    const report = JSON.parse(await session.check(file, text));
    window.octconvLab.lastReport = report;
    showError(report.compileError);
    if (report.compileError) {
      badge('does not compile', 'fail');
      status(`${file} does not compile; the last good version stays in use.`);
      return report;
    }
    inUse[file] = text;
    const list = [...report.findings.filter((f) => !f.passed), ...report.findings.filter((f) => f.passed)];
    $('lab-findings').replaceChildren(...list.map((f) => {
      const item = document.createElement('li');
      item.className = f.passed ? 'pass' : 'fail';
      item.textContent = `${f.passed ? 'ok  ' : 'FAIL'} ${f.text}`;
      return item;
    }));
    const total = report.passed + report.failed;
    badge(report.failed ? `FAIL ${report.failed} of ${total}` : `PASS ${total}/${total}`, report.failed ? 'fail' : 'pass');
    status(`${file}: ${report.passed} passed, ${report.failed} failed in ${report.seconds.toFixed(1)} s.`);
    return report;
  });
}

// Time and training use the kernels in use: check the editor's text first if it is not.
async function checkIfChanged() {
  if ((inUse[file] ?? LabSession.shipped(file)) !== editor.getText()) await check();
}

async function time() {
  if (!session) return null;
  await checkIfChanged();
  return serially(async () => {
    status(`timing ${file}'s kernels at the seed net's shapes (batch 64), shipped against edited…`);
    const times = JSON.parse(await session.time(file));
    const rows = times.map((t) => {
      const row = document.createElement('tr');
      for (const cell of [t.kernel, `${t.shippedMs.toFixed(3)} ms`, `${t.editedMs.toFixed(3)} ms`, `${(t.editedMs / t.shippedMs).toFixed(2)}×`]) {
        const td = document.createElement('td');
        td.textContent = cell;
        row.append(td);
      }
      return row;
    });
    $('lab-times').querySelector('tbody').replaceChildren(...rows);
    $('lab-times').hidden = false;
    const clock = times[0]?.clock ?? 'no kernel timed';
    $('lab-times').querySelector('caption').textContent = `${file} at the seed net's shapes (one training step, batch 64): ` +
      `median of 5 samples per kernel, ${clock}${clock === 'wall clock' ? ' around each submission (this browser gives no GPU timestamps)' : ''}`;
    status(`${file}: timed.`);
    return times;
  });
}

let trainDataLoaded = false;
async function train(steps = Number($('lab-steps').value)) {
  if (!session) return null;
  await checkIfChanged();
  return serially(async () => {
    if (!trainDataLoaded) {
      status('loading MNIST…');
      session.setData(await fetchMnistFile('train-images-idx3-ubyte.gz'), await fetchMnistFile('train-labels-idx1-ubyte.gz'));
      trainDataLoaded = true;
    }
    status(`training ${steps} steps with the shipped kernels, then with the edited ones…`);
    const result = JSON.parse(await session.train(steps));
    drawCurves(result);
    status(result.problem ? `training: ${result.problem}` : `training ${steps} steps: as the shipped kernels.`);
    return result;
  });
}

function drawCurves({ shipped, edited }) {
  $('lab-train-figure').hidden = false;
  const finite = [...shipped, ...edited].map(([, loss]) => loss).filter(Number.isFinite);
  const steps = Math.max(1, ...shipped.map(([step]) => step));
  const line = chart($('lab-chart'), 0, Math.max(2.5, ...finite), `${steps} steps`);
  // The edited run dashed over the shipped one, so both show where they agree.
  line(shipped.map(([step, loss]) => [step / steps, loss]), '#2f6fde', 4);
  line(edited.map(([step, loss]) => [step / steps, loss]), '#d9822b', 2, [6, 4]);
}

// ---- Keep and share -------------------------------------------------------------------
// Byte by byte, not by spreading the array into one call, which a long link would overflow.
const toBase64Url = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const fromBase64Url = (text) => Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const deflate = async (bytes) =>
  new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate-raw'))).arrayBuffer());

// Inflates a link's bytes, stopping at `limit`: a short link must not unpack into gigabytes.
async function inflateBounded(bytes, limit) {
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  const parts = [];
  let total = 0;
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    total += chunk.value.length;
    if (total > limit) {
      await reader.cancel();
      throw new Error(`it unpacks to more than the ${limit} bytes a link may hold`);
    }
    parts.push(chunk.value);
  }
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}

// A link to this page that opens the lab on this file with these edits (deflated into the fragment).
async function shareLink() {
  const payload = new TextEncoder().encode(JSON.stringify({ file, edits: edits() }));
  const link = `${location.origin}${location.pathname}${location.search}${SHARE_PREFIX}${toBase64Url(await deflate(payload))}`;
  history.replaceState(null, '', link);
  await navigator.clipboard?.writeText(link).then(() => status('Link copied: it opens this kernel with your edits.'),
    () => status('The address bar now holds the link to share.'));
  return link;
}

// The file and edits of a shared link, null without one, or why a broken link was refused (never guessed at).
async function sharedExperiment() {
  if (!location.hash.startsWith(SHARE_PREFIX)) return null;
  try {
    const bytes = await inflateBounded(fromBase64Url(location.hash.slice(SHARE_PREFIX.length)), MAX_TEXT_BYTES);
    const { file: shared, edits: sharedEdits } = JSON.parse(new TextDecoder().decode(bytes));
    const known = new Set(files.map((f) => f.file));
    const unknown = Object.keys(sharedEdits).filter((name) => !known.has(name) || typeof sharedEdits[name] !== 'string');
    if (!known.has(shared) || unknown.length) throw new Error(`it names files octconv does not have: ${[shared, ...unknown].join(', ')}`);
    return { file: shared, edits: sharedEdits };
  } catch (e) {
    return { refused: `The shared link could not be read (${e.message}); ask for the link again. Your own edits are shown.` };
  }
}

function download() {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([editor.getText()], { type: 'text/plain' }));
  link.download = file;
  link.click();
  URL.revokeObjectURL(link.href);
  status(`Saved ${file}: put it in a folder from \`octconv lab --init DIR\` and run \`octconv lab --watch DIR\`, or OCTCONV_SHADERS=DIR.`);
}

async function dropped(event) {
  event.preventDefault();
  $('lab').classList.remove('dropping');
  const dropped = event.dataTransfer?.files?.[0];
  if (!dropped) return;
  if (!dropped.name.endsWith('.wgsl') || dropped.size > MAX_TEXT_BYTES) {
    status(`${dropped.name} is not a .wgsl file of at most 1 MiB; drop one of octconv's kernel files.`);
    return;
  }
  await open();
  const target = files.some((f) => f.file === dropped.name) ? dropped.name : file;
  showFile(target, await dropped.text());
  status(`Loaded ${dropped.name} as ${target}.`);
}

// ---- Opening ----------------------------------------------------------------------------
async function open() {
  opening ??= (async () => {
    $('lab-open').hidden = true;
    $('lab-body').hidden = false;
    await init(); // the page's wasm, already loaded by app.js
    files = JSON.parse(LabSession.files());
    fillFileChoice();
    editor = await makeEditor($('lab-editor'));
    window.octconvLab.editor = editor.kind;
    const shared = await sharedExperiment();
    if (shared?.edits) {
      localStorage.setItem(EDITS, JSON.stringify({ ...edits(), ...shared.edits }));
    }
    showFile(shared?.file ?? localStorage.getItem(CURRENT) ?? 'elementwise.wgsl');
    if (!navigator.gpu) {
      $('lab-no-webgpu').hidden = false;
    } else {
      try {
        session = await LabSession.open();
        status(`Edited kernels run on ${session.adapter}, beside the shipped ones.`);
      } catch (e) {
        $('lab-no-webgpu').hidden = false;
        $('lab-no-webgpu').textContent = `Editing kernels needs WebGPU, and no WebGPU device could be opened (${e.message}).`;
      }
    }
    if (shared?.refused) status(shared.refused);
    for (const id of ['lab-check', 'lab-time', 'lab-train']) $(id).disabled = !session;
    window.octconvLab.ready = true;
  })();
  return opening;
}

$('lab-open').addEventListener('click', () => open());
$('lab-file').addEventListener('change', () => showFile($('lab-file').value));
$('lab-check').addEventListener('click', () => check());
$('lab-time').addEventListener('click', () => time().catch((e) => status(`${e}`)));
$('lab-train').addEventListener('click', () => train().catch((e) => status(`${e}`)));
$('lab-revert').addEventListener('click', () => {
  showFile(file, LabSession.shipped(file));
  session?.reset(file);
  delete inUse[file];
});
$('lab-share').addEventListener('click', () => shareLink());
$('lab-download').addEventListener('click', () => download());
$('lab').addEventListener('dragover', (e) => { e.preventDefault(); $('lab').classList.add('dropping'); });
$('lab').addEventListener('dragleave', () => $('lab').classList.remove('dropping'));
$('lab').addEventListener('drop', (e) => dropped(e));
if (location.hash.startsWith(SHARE_PREFIX)) open();

// Hooks for the end-to-end test and for experimenting from the console.
window.octconvLab = {
  ready: false,
  open,
  select: (name) => showFile(name),
  getText: () => editor.getText(),
  setText(text) { editor.setText(text); changed(); },
  compile,
  check,
  time,
  train,
  shareLink,
};
