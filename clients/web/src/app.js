// The page: files chosen or dropped join a queue; each is uploaded (parts hashed in
// Web Workers, signed in batches, PUT straight to the store), can be aborted, is
// followed through every processing stage and ends with its outcome in words. Ready
// files are submitted as an item, followed to stored, and its versions listed with
// download links. Everything a screen reader needs is announced in #announce.

import { Api, ITEMS } from './grpcweb.js';
import * as handles from './handles.js';
import { HashPool } from './hashpool.js';
import * as pb from './proto.js';
import { savedKey, savedUploads, uploadFile, watch } from './upload.js';

const params = new URLSearchParams(location.hash.slice(1));
const $ = (id) => document.getElementById(id);
$('api').value = params.get('api') || localStorage.getItem('api') || 'http://127.0.0.1:50051';
$('token').value = params.get('token') || sessionStorage.getItem('token') || '';

const pool = new HashPool();
const STAGES = ['upload', 'scan', 'hash', 'metadata', 'preview'];
/** Every file of the queue: { file, row, phase, upload, controller, aborted }. */
const entries = [];

// How responsive the page stays: the longest gap between ticks of a 10 ms timer
// while parts are hashed and sent (kept on the body for the browser test).
let lastTick = performance.now();
let longestGap = 0;
// And every task that held the main thread 50 ms or more (the Long Tasks API).
window.longTasks = [];
if (PerformanceObserver.supportedEntryTypes?.includes('longtask')) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.longTasks.push({ at: Math.round(e.startTime), ms: Math.round(e.duration) });
  }).observe({ type: 'longtask', buffered: true });
}
setInterval(() => {
  const now = performance.now();
  if (document.body.dataset.phase === 'uploading') {
    longestGap = Math.max(longestGap, now - lastTick);
    document.body.dataset.longestTimerGapMs = longestGap.toFixed(0);
  }
  lastTick = now;
}, 10);

function log(text) {
  const line = document.createElement('div');
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $('log').prepend(line);
}

/** Says `text` to screen readers (a polite live region) and logs it. */
function announce(text) {
  $('announce').textContent = text;
  log(text);
}

const api = () => new Api($('api').value, $('token').value);

function rowFor(file) {
  const row = document.createElement('li');
  row.className = 'file';
  row.dataset.name = file.name;
  row.innerHTML = `<div class="head"><strong class="fname"></strong> <span class="state"></span>
    <button class="abort" type="button">Abort</button></div>
    ${STAGES.map((s) => `<div class="stage" data-stage="${s}"><span class="name">${s}</span>`
      + `<progress max="1" value="0"></progress><span class="status"></span></div>`).join('')}
    <p class="reason"></p>`;
  row.querySelector('.fname').textContent = file.name;
  row.querySelector('.abort').setAttribute('aria-label', `Abort ${file.name}`);
  for (const p of row.querySelectorAll('progress')) p.setAttribute('aria-label', `${file.name}: ${p.parentElement.dataset.stage}`);
  $('queue').append(row);
  return row;
}

function show(row, stage, done, total, status) {
  const line = row.querySelector(`[data-stage="${stage}"]`);
  line.querySelector('progress').max = Math.max(total, 1);
  line.querySelector('progress').value = done;
  line.querySelector('.status').textContent = status;
  line.dataset.status = status;
}

/** An upload's outcome in words, for the states that end it. */
function outcome(u) {
  // The server's reasons are sentences already: no second full stop.
  return words(u).replace(/\.\.$/, '.');
}

function words(u) {
  const why = u.failure && u.failure.message;
  switch (u.state) {
    case 'ready': return u.metadata
      ? `Ready: ${u.metadata.sizeBytes} bytes, ${u.metadata.type}, MD5 ${u.metadata.md5Hex}.`
      : 'Ready.';
    case 'quarantined': return `Quarantined: ${why || 'the malware scan found a threat; the file was set aside and will not be published'}.`;
    case 'rejected': return `Rejected: ${why || 'this file is not allowed here'}.`;
    case 'expired': return 'Expired: the upload was not finished in time. Upload the file again.';
    case 'failed': return `Failed: ${why || 'processing gave up after its retries'}.`;
    case 'aborted': return 'Aborted: you stopped this upload and its parts were removed from the store.';
    default: return '';
  }
}

/** Sets a file's phase, what its row says, and the page's phase (for the test). */
function setPhase(entry, phase, words) {
  entry.phase = phase;
  entry.row.dataset.phase = phase;
  entry.row.querySelector('.state').textContent = phase;
  if (words !== undefined) entry.row.querySelector('.reason').textContent = words;
  entry.row.querySelector('.abort').hidden = !['queued', 'uploading'].includes(phase);
  const any = (p) => entries.some((e) => e.phase === p);
  document.body.dataset.phase = any('uploading') ? 'uploading' : any('processing') ? 'processing' : 'idle';
  $('submit').disabled = !entries.some((e) => e.phase === 'ready');
}

async function run(entry) {
  const { file, row } = entry;
  entry.controller = new AbortController();
  setPhase(entry, 'uploading');
  let sent = 0;
  let total = file.size;
  let partsDone = 0;
  const began = performance.now();
  try {
    const upload = await uploadFile(api(), file, {
      concurrency: 4,
      storage: localStorage,
      pool,
      signal: entry.controller.signal,
      on: {
        log: (text) => log(`${file.name}: ${text}`),
        started(u, missing) {
          entry.upload = u;
          if (entry.aborted) abortUpload(entry);
          if (entry.handle) handles.keep(savedKey(file), entry.handle).catch((e) => log(`${file.name}: ${e.message}`));
          row.dataset.uploadId = u.uploadId;
          total = u.sizeBytes;
          sent = u.sizeBytes - missing.reduce((n, p) => n + Math.min(u.partSizeBytes, u.sizeBytes - (p - 1) * u.partSizeBytes), 0);
          show(row, 'upload', sent, total, `${missing.length} parts to send`);
        },
        part(number, bytes) {
          sent += bytes;
          partsDone += 1;
          row.dataset.partsDone = String(partsDone);
          const rate = sent / Math.max((performance.now() - began) / 1000, 0.001);
          show(row, 'upload', sent, total, `${(rate / 1e6).toFixed(1)} MB/s, eta ${((total - sent) / Math.max(rate, 1)).toFixed(0)} s`);
        },
      },
    });
    entry.upload = upload;
    forgetHandle(entry);
    show(row, 'upload', total, total, 'done');
    setPhase(entry, 'processing');
    announce(`${file.name}: uploaded; scanning and processing`);
    const last = await watch(api(), upload.uploadId, ({ upload: u, stages }) => {
      if (u) row.querySelector('.state').textContent = u.state;
      for (const s of stages) if (s.stage !== 'upload') show(row, s.stage, s.bytesDone, s.bytesTotal, s.status);
    });
    const u = (last && last.upload) || upload;
    entry.upload = u;
    setPhase(entry, u.state, outcome(u));
    announce(`${file.name}: ${outcome(u) || u.state}`);
  } catch (e) {
    if (entry.aborted) return;
    setPhase(entry, 'error', e.message);
    announce(`${file.name}: ${e.message}`);
  } finally {
    offerResume();
  }
}

/** Stops a file's upload: its PUTs cancelled, the upload aborted (the store frees its parts). */
async function abort(entry) {
  if (entry.aborted) return;
  entry.aborted = true;
  entry.controller?.abort();
  localStorage.removeItem(savedKey(entry.file));
  forgetHandle(entry);
  if (entry.upload) await abortUpload(entry);
  const bar = entry.row.querySelector('[data-stage="upload"] progress');
  show(entry.row, 'upload', bar.value, bar.max, 'aborted');
  setPhase(entry, 'aborted', outcome({ state: 'aborted' }));
  announce(`${entry.file.name}: aborted`);
}

/** AbortUpload, once per file (also when the abort came before CreateUpload answered). */
async function abortUpload(entry) {
  if (entry.abortSent) return;
  entry.abortSent = true;
  try {
    await api().unary('AbortUpload', pb.byUploadId(entry.upload.uploadId));
  } catch (e) {
    log(`${entry.file.name}: abort: ${e.message}`);
  }
}

function forgetHandle(entry) {
  if (entry.handle) handles.forget(savedKey(entry.file)).catch(() => {});
}

/** Queues `files` and starts them; `fileHandles[i]`, when given, is `files[i]`'s handle. */
function add(files, fileHandles = []) {
  localStorage.setItem('api', $('api').value);
  sessionStorage.setItem('token', $('token').value);
  for (const [i, file] of files.entries()) {
    const entry = { file, handle: fileHandles[i], row: rowFor(file), phase: 'queued' };
    entry.row.querySelector('.abort').addEventListener('click', () => abort(entry));
    entries.push(entry);
    setPhase(entry, 'queued');
    run(entry);
  }
}

/** Submits every ready file as one item, follows it to stored, lists its versions. */
async function submitItem() {
  const ready = entries.filter((e) => e.phase === 'ready');
  if (!ready.length) return;
  $('submit').disabled = true;
  for (const e of ready) setPhase(e, 'submitted');
  const box = $('item');
  try {
    const key = crypto.randomUUID();
    const title = $('title').value || ready[0].file.name;
    const item = pb.withItem(await api().unary(`${ITEMS}/SubmitItem`,
      pb.submitItem(key, title, ready.map((e) => e.upload.uploadId))));
    box.dataset.itemId = item.itemId;
    announce(`item "${title}" submitted; saving its files`);
    let last = item;
    await api().stream(`${ITEMS}/WatchItem`, pb.byItemId(item.itemId), (m) => {
      last = pb.withItem(m);
      box.dataset.state = last.state;
      $('item-state').textContent = `Item ${last.itemId}: ${last.state}`;
    });
    box.dataset.state = last.state;
    if (last.state !== 'stored') {
      const why = last.failure ? `: ${last.failure.message}` : '';
      for (const e of ready) setPhase(e, 'ready');
      announce(`item "${title}" was not stored${why}`);
      return;
    }
    for (const e of ready) setPhase(e, 'stored', 'Stored in the item.');
    announce(`item "${title}" stored`);
    await listVersions(item.itemId);
  } catch (e) {
    for (const r of ready) if (r.phase === 'submitted') setPhase(r, 'ready');
    announce(`submitting failed: ${e.message}`);
  }
}

async function listVersions(itemId) {
  const list = $('versions');
  list.textContent = '';
  const versions = pb.versions(await api().unary(`${ITEMS}/ListVersions`, pb.byItemId(itemId)));
  for (const v of versions) {
    const href = pb.url(await api().unary(`${ITEMS}/GetDownloadUrl`, pb.downloadUrl(itemId, v.fileId, v.version)));
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = href;
    a.textContent = `${v.fileName}, version ${v.version}${v.current ? ' (current)' : ''}`;
    a.dataset.md5 = v.md5Hex;
    li.append(a, ` ${v.sizeBytes} bytes, MD5 ${v.md5Hex}`);
    list.append(li);
  }
  $('item').dataset.versions = String(versions.length);
}

/** Queues files from handles (the picker's, or kept ones after a closed tab). */
async function addHandles(list) {
  const files = [];
  for (const handle of list) files.push(await handles.fileOf(handle));
  add(files, list);
}
// The picker is a seller's way in; a browser test hands handles the same way.
window.addHandles = addHandles;

/**
 * Offers to continue interrupted uploads: with a kept file handle, one button that
 * reads the file again by itself; without, a request to choose the same file.
 */
async function offerResume() {
  const active = new Set(entries.filter((e) => ['queued', 'uploading'].includes(e.phase)).map((e) => savedKey(e.file)));
  const saved = savedUploads(localStorage).filter((s) => !active.has(s.key));
  const byKey = new Map();
  if (handles.supported() || navigator.storage?.getDirectory) {
    try {
      for (const { key, handle } of await handles.kept()) byKey.set(key, handle);
    } catch (e) {
      log(`kept files could not be read: ${e.message}`);
    }
  }
  const box = $('resume');
  box.textContent = '';
  const ask = saved.filter((s) => !byKey.has(s.key));
  for (const s of saved.filter((x) => byKey.has(x.key))) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'continue';
    button.textContent = `Continue ${s.name}`;
    button.addEventListener('click', () => {
      button.remove();
      addHandles([byKey.get(s.key)]).catch((e) => announce(`${s.name}: ${e.message}`));
    });
    box.append(button, ' ');
  }
  if (ask.length) {
    box.append(`Interrupted: ${ask.map((s) => s.name).join(', ')}. Choose the same file to continue where it stopped.`);
  }
}

$('start').addEventListener('click', () => {
  const files = [...$('file').files];
  if (!files.length) { announce('choose one or more files first'); return; }
  $('file').value = '';
  add(files);
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.dataset.over = '1'; });
drop.addEventListener('dragleave', () => { delete drop.dataset.over; });
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  delete drop.dataset.over;
  add([...e.dataTransfer.files]);
});
$('submit').addEventListener('click', submitItem);
if (handles.supported()) {
  // Files chosen here are kept as handles: after a closed tab the page continues
  // their uploads without asking for them again.
  $('pick').hidden = false;
  $('pick').addEventListener('click', async () => {
    try {
      await addHandles(await window.showOpenFilePicker({ multiple: true }));
    } catch (e) {
      if (e.name !== 'AbortError') announce(`choosing files failed: ${e.message}`);
    }
  });
}
offerResume();
