// The page: pick a file, upload it, watch every stage until it is ready.

import { Api } from './grpcweb.js';
import { savedUploads, uploadFile, watch } from './upload.js';

const params = new URLSearchParams(location.hash.slice(1));
const $ = (id) => document.getElementById(id);
$('api').value = params.get('api') || localStorage.getItem('api') || 'http://127.0.0.1:50051';
$('token').value = params.get('token') || sessionStorage.getItem('token') || '';

function log(text) {
  const line = document.createElement('div');
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $('log').prepend(line);
}

function bar(name) {
  let row = document.querySelector(`[data-stage="${name}"]`);
  if (!row) {
    row = document.createElement('div');
    row.className = 'stage';
    row.dataset.stage = name;
    row.innerHTML = `<span class="name">${name}</span><progress max="1" value="0"></progress><span class="status"></span>`;
    $('stages').append(row);
  }
  return row;
}

function show(name, done, total, status) {
  const row = bar(name);
  row.querySelector('progress').max = Math.max(total, 1);
  row.querySelector('progress').value = done;
  row.querySelector('.status').textContent = status;
  row.dataset.status = status;
}

function offerResume() {
  const saved = savedUploads(localStorage);
  $('resume').textContent = saved.length
    ? `Interrupted: ${saved.map((s) => s.name).join(', ')}. Choose the same file to continue where it stopped.`
    : '';
}

async function start() {
  const file = $('file').files[0];
  if (!file) { log('choose a file first'); return; }
  localStorage.setItem('api', $('api').value);
  sessionStorage.setItem('token', $('token').value);
  const api = new Api($('api').value, $('token').value);
  $('start').disabled = true;
  document.body.dataset.phase = 'uploading';
  let sent = 0;
  let total = file.size;
  let partsDone = 0;
  const began = performance.now();
  try {
    const upload = await uploadFile(api, file, {
      concurrency: 4,
      storage: localStorage,
      on: {
        log,
        started(u, missing) {
          total = u.sizeBytes;
          sent = u.sizeBytes - missing.reduce((n, p) => n + Math.min(u.partSizeBytes, u.sizeBytes - (p - 1) * u.partSizeBytes), 0);
          show('upload', sent, total, `${missing.length} parts to send`);
          document.body.dataset.uploadId = u.uploadId;
        },
        part(number, bytes) {
          sent += bytes;
          partsDone += 1;
          document.body.dataset.partsDone = String(partsDone);
          const secs = (performance.now() - began) / 1000;
          const rate = sent / Math.max(secs, 0.001);
          show('upload', sent, total, `${(rate / 1e6).toFixed(1)} MB/s, eta ${((total - sent) / Math.max(rate, 1)).toFixed(0)} s`);
        },
      },
    });
    show('upload', total, total, 'done');
    log(`upload ${upload.uploadId} completed; processing`);
    document.body.dataset.phase = 'processing';
    const last = await watch(api, upload.uploadId, ({ upload: u, stages }) => {
      $('state').textContent = u ? u.state : '';
      for (const s of stages) if (s.stage !== 'upload') show(s.stage, s.bytesDone, s.bytesTotal, s.status);
    });
    const u = last && last.upload;
    document.body.dataset.phase = u ? u.state : 'unknown';
    if (u && u.metadata) {
      $('result').textContent = `${u.state}: ${u.metadata.sizeBytes} bytes, md5 ${u.metadata.md5Hex}, sha256 ${u.metadata.sha256Hex}, ${u.metadata.type}`;
    } else if (u && u.failure) {
      $('result').textContent = `${u.state}: ${u.failure.message}`;
    }
  } catch (e) {
    document.body.dataset.phase = 'error';
    log(`upload failed: ${e.message}`);
  } finally {
    $('start').disabled = false;
    offerResume();
  }
}

$('start').addEventListener('click', start);
offerResume();
