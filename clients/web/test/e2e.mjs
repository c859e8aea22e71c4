// Drives the page in headless Chromium (Debian's, through playwright-core).
// WEB_SCENARIO=resume (the default): uploads WEB_FILE, reloads in the middle, chooses
// WEB_OTHER_FILE (same name and size, refused) and then the file again, and checks
// the upload continues instead of restarting, to ready; reports the PUTs and signing
// calls it saw and the page's longest main-thread timer gap; WEB_SCREENSHOT.
// WEB_SCENARIO=queue: the three WEB_FILES at once (see queueScenario);
// WEB_SCREENSHOT_QUEUE and WEB_SCREENSHOT_ITEM.
// WEB_SCENARIO=handle: WEB_FILE through a kept file handle, the tab closed and
// another opened (see handleScenario). WEB_SCENARIO=bench: WEB_FILE once, timed.
// WEB_SCENARIO=floor: WEB_FILE's parts of WEB_PART_BYTES, four at a time, PUT by the
// page straight from the file to a local sink that discards them — no hashing, no
// signing, no store: what Chromium alone costs to send the bytes.
// WEB_SCENARIO=hash: WEB_FILE hashed by the page's workers under a main-thread timer.
// WEB_SCENARIO=flaky: WEB_FILE with one PUT cut and one held past its URL's life.
// WEB_TRACE=1: Chromium traces the scenario and the report names every main-thread
// task of 50 ms or more: its wall time, the CPU time the thread had in it, and what
// took longest inside it.
// Also: WEB_API, WEB_TOKEN, CHROMIUM, and WEB_SERVER_CERT: the certificate (PEM) an
// https:// WEB_API presents, issued by the test CA, which Chromium is told to trust
// by its public key (and nothing else).
// Output: one JSON line on stdout with what happened; exit 1 on any failure.

import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set`); return process.env[k]; };
const server = await serve();
const page_url = `http://127.0.0.1:${server.address().port}/#api=${encodeURIComponent(env('WEB_API'))}&token=${encodeURIComponent(env('WEB_TOKEN'))}`;
const trust = [];
if (process.env.WEB_SERVER_CERT) {
  const { X509Certificate, createHash } = await import('node:crypto');
  const { readFileSync } = await import('node:fs');
  const cert = new X509Certificate(readFileSync(process.env.WEB_SERVER_CERT));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  trust.push(`--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`);
}
// In the page: the last queue row of a file name; the phases that end a file.
const helpers = `window.lastRow = (name) => [...document.querySelectorAll('#queue .file')].filter((r) => r.dataset.name === name).at(-1);
window.ENDS = ['ready', 'failed', 'rejected', 'quarantined', 'expired', 'aborted', 'error', 'stored'];`;

/**
 * Three files at once (WEB_FILES: the item's file, an EICAR file, a large file to
 * abort), by keyboard where a seller would use it: the large one aborted once two of
 * its parts are stored, the EICAR one quarantined, the first submitted as an item,
 * followed to stored and downloaded back through its version's link.
 */
async function queueScenario(page) {
  const [keep, eicar, big] = env('WEB_FILES').split(':');
  const name = (p) => p.split('/').at(-1);
  await page.setInputFiles('#file', [keep, eicar, big]);
  await page.focus('#start');
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => Number(lastRow(n)?.dataset.partsDone || 0) >= 2, name(big), { timeout: 60000 });
  await page.screenshot({ path: env('WEB_SCREENSHOT_QUEUE'), fullPage: true });
  result.abortedUploadId = await page.evaluate((n) => lastRow(n).dataset.uploadId, name(big));
  await page.focus(`[aria-label="Abort ${name(big)}"]`);
  await page.keyboard.press('Enter');
  for (const p of [keep, eicar, big]) {
    await page.waitForFunction((n) => ENDS.includes(lastRow(n)?.dataset.phase), name(p), { timeout: 120000 });
  }
  result.files = await page.evaluate((names) => Object.fromEntries(names.map((n) => [n, {
    phase: lastRow(n).dataset.phase,
    reason: lastRow(n).querySelector('.reason').textContent,
    uploadId: lastRow(n).dataset.uploadId,
  }])), [keep, eicar, big].map(name));
  result.announced = await page.textContent('#announce');
  result.announceLive = await page.getAttribute('#announce', 'aria-live');
  await page.fill('#title', 'Field recordings');
  await page.focus('#submit');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => ['stored', 'failed'].includes(document.getElementById('item').dataset.state)
    && (document.getElementById('item').dataset.state === 'failed' || document.getElementById('item').dataset.versions), null, { timeout: 120000 });
  result.item = await page.evaluate(() => ({
    id: document.getElementById('item').dataset.itemId,
    state: document.getElementById('item').dataset.state,
    versions: [...document.querySelectorAll('#versions a')].map((a) => ({ text: a.textContent, href: a.href, md5: a.dataset.md5 })),
  }));
  result.phasesAfterItem = await page.evaluate((names) => Object.fromEntries(
    names.map((n) => [n, lastRow(n).dataset.phase]),
  ), [keep, eicar, big].map(name));
  await page.screenshot({ path: env('WEB_SCREENSHOT_ITEM'), fullPage: true });
  const { createHash } = await import('node:crypto');
  for (const v of result.item.versions) {
    const res = await fetch(v.href);
    v.status = res.status;
    v.downloadedMd5 = createHash('md5').update(Buffer.from(await res.arrayBuffer())).digest('hex');
  }
}

/**
 * One file, reloaded once three parts are stored; another file of the same name and
 * size chosen first after the reload (refused), then the right one (continued).
 */
async function resumeScenario(page) {
  await page.setInputFiles('#file', env('WEB_FILE'));
  await page.click('#start');
  // Reload once a few parts are stored, with others in flight.
  await page.waitForFunction(() => Number(lastRow('product.bin')?.dataset.partsDone || 0) >= 3, null, { timeout: 60000 });
  result.partsBeforeReload = Number(await page.evaluate(() => lastRow('product.bin').dataset.partsDone));
  result.longestTimerGapBeforeReloadMs = Number(await page.evaluate(() => document.body.dataset.longestTimerGapMs || -1));
  result.longTasksBeforeReload = await page.evaluate(() => window.longTasks);
  result.uploadId = await page.evaluate(() => lastRow('product.bin').dataset.uploadId);
  await page.reload();
  // PUTs the old page sent until it unloaded counted as before the reload.
  tally.phase = 'other';
  // The offer is written once the page has read its saved uploads and kept handles.
  await page.waitForFunction(() => document.getElementById('resume').textContent.trim() !== '', null, { timeout: 30000 });
  result.offeredResume = await page.textContent('#resume');
  if (process.env.WEB_OTHER_FILE) {
    // Another file of the same name and size: refused before anything is sent.
    await page.setInputFiles('#file', process.env.WEB_OTHER_FILE);
    await page.click('#start');
    await page.waitForFunction(() => lastRow('product.bin')?.dataset.phase === 'error', null, { timeout: 60000 });
    result.otherFileRefusal = await page.evaluate(() => lastRow('product.bin').querySelector('.reason').textContent);
  }
  tally.phase = 'after';
  await page.setInputFiles('#file', env('WEB_FILE'));
  await page.click('#start');
  await page.waitForFunction(() => ENDS.includes(lastRow('product.bin')?.dataset.phase), null, { timeout: 120000 });
  result.phase = await page.evaluate(() => lastRow('product.bin').dataset.phase);
  result.longestTimerGapMs = Number(await page.evaluate(() => document.body.dataset.longestTimerGapMs || -1));
  result.longTasks = await page.evaluate(() => window.longTasks);
  result.uploadIdAfterReload = await page.evaluate(() => lastRow('product.bin').dataset.uploadId);
  result.stages = await page.evaluate(() => Object.fromEntries(
    [...lastRow('product.bin').querySelectorAll('[data-stage]')].map((r) => [r.dataset.stage, r.dataset.status]),
  ));
  result.result = await page.evaluate(() => lastRow('product.bin').querySelector('.reason').textContent);
  await page.screenshot({ path: env('WEB_SCREENSHOT'), fullPage: true });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', ...trust],
});
const result = { putsBeforeReload: 0, putsForOtherFile: 0, putsAfterReload: 0, signCallsAfterReload: 0, stages: {}, log: [] };
const counter = { before: 'putsBeforeReload', other: 'putsForOtherFile', after: 'putsAfterReload' };
const tally = { phase: 'before' };
/** A new tab of `context` on the page, its requests counted and its messages logged. */
async function openTab(context) {
  const page = await context.newPage();
  page.on('request', (r) => {
    if (r.method() === 'PUT') result[counter[tally.phase]] += 1;
    if (tally.phase === 'after' && /\/(SignParts|SignPart)$/.test(r.url())) result.signCallsAfterReload += 1;
  });
  page.on('filechooser', () => { result.fileChoosers = (result.fileChoosers || 0) + 1; });
  page.on('console', (m) => result.log.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => result.log.push(`page error: ${e.message}`));
  await page.addInitScript(helpers);
  await page.goto(page_url);
  return page;
}

/**
 * A file handed to the page as a file handle (from the origin's private file system:
 * the same FileSystemFileHandle the picker gives, which headless Chromium cannot be
 * made to show), the tab closed once three parts are stored, a new tab opened: the
 * page offers to continue, reads the file from the kept handle and sends the rest.
 */
async function handleScenario(context) {
  let page = await openTab(context);
  await page.setInputFiles('#file', env('WEB_FILE'));
  await page.evaluate(async () => {
    const input = document.getElementById('file');
    const file = input.files[0];
    input.value = '';
    const root = await navigator.storage.getDirectory();
    const handle = await root.getFileHandle(file.name, { create: true });
    const out = await handle.createWritable();
    await out.write(file);
    await out.close();
    await window.addHandles([handle]);
  });
  await page.waitForFunction(() => Number(lastRow('product.bin')?.dataset.partsDone || 0) >= 3, null, { timeout: 60000 });
  result.partsBeforeReload = Number(await page.evaluate(() => lastRow('product.bin').dataset.partsDone));
  result.uploadId = await page.evaluate(() => lastRow('product.bin').dataset.uploadId);
  await page.close();
  tally.phase = 'after';
  page = await openTab(context);
  await page.waitForSelector('#resume button.continue', { timeout: 30000 });
  result.offeredResume = await page.textContent('#resume');
  await page.click('#resume button.continue');
  await page.waitForFunction(() => ENDS.includes(lastRow('product.bin')?.dataset.phase), null, { timeout: 120000 });
  result.phase = await page.evaluate(() => lastRow('product.bin').dataset.phase);
  result.uploadIdAfterReload = await page.evaluate(() => lastRow('product.bin').dataset.uploadId);
  result.result = await page.evaluate(() => lastRow('product.bin').querySelector('.reason').textContent);
  result.log.push(...(await page.$$eval('#log div', (ds) => ds.map((d) => d.textContent))));
}

/**
 * WEB_FILE hashed in 5 MiB parts by the page's pool of Web Workers while a 10 ms
 * timer runs on the main thread: the part MD5s and the timer's longest wait.
 */
async function hashScenario(page) {
  await page.setInputFiles('#file', env('WEB_FILE'));
  Object.assign(result, await page.evaluate(async () => {
    const { HashPool } = await import('./src/hashpool.js');
    const { hex } = await import('./src/md5.js');
    const file = document.getElementById('file').files[0];
    const pool = new HashPool();
    let last = performance.now();
    let gap = 0;
    const timer = setInterval(() => { const now = performance.now(); gap = Math.max(gap, now - last); last = now; }, 10);
    const started = performance.now();
    const parts = [];
    for (let at = 0; at < file.size; at += 5 * 1024 * 1024) parts.push(pool.hash(file, at, Math.min(5 * 1024 * 1024, file.size - at)));
    const md5s = (await Promise.all(parts)).map(hex);
    const hashMs = performance.now() - started;
    clearInterval(timer);
    pool.close();
    return { partMd5s: md5s, hashMs, hashFrom: started, longestTimerGapMs: gap, workers: pool.size };
  }));
  // Every long task the page saw, and those that overlapped the hashing (the page's
  // own start-up before it, loading modules, is not what this measures).
  result.longTasks = await page.evaluate(() => window.longTasks);
  const until = result.hashFrom + result.hashMs;
  result.longTasksWhileHashing = result.longTasks.filter((t) => t.at + t.ms > result.hashFrom && t.at < until);
}

/**
 * WEB_FILE uploaded while the network misbehaves, by the test's hand: the first PUT
 * of a part is cut (connection reset), the next one held 3 s, past the life of its
 * URL (the server signs for 2 s here), before it goes on to the store.
 */
async function flakyScenario(page) {
  result.cut = 0;
  result.held = 0;
  await page.route((url) => url.searchParams.get('x-id') === 'UploadPart', async (route) => {
    if (route.request().method() !== 'PUT') return route.continue();
    if (result.cut === 0) {
      result.cut += 1;
      return route.abort('connectionreset');
    }
    if (result.held === 0) {
      result.held += 1;
      await new Promise((r) => setTimeout(r, 3000));
    }
    return route.continue();
  });
  await benchScenario(page);
}

/** WEB_FILE uploaded once; the time from the click to CompleteUpload's answer. */
async function benchScenario(page) {
  await page.setInputFiles('#file', env('WEB_FILE'));
  // Timed in the page, from the click to the row leaving 'uploading', watched by a
  // MutationObserver: no polling from here competes with the upload for the CPU.
  result.uploadMs = await page.evaluate(() => new Promise((resolve) => {
    const done = () => !['queued', 'uploading'].includes(lastRow('product.bin')?.dataset.phase ?? 'queued');
    const started = performance.now();
    const observer = new MutationObserver(() => {
      if (done()) { observer.disconnect(); resolve(Math.round(performance.now() - started)); }
    });
    observer.observe(document.getElementById('queue'), { subtree: true, childList: true, attributes: true, attributeFilter: ['data-phase'] });
    document.getElementById('start').click();
  }));
  result.phase = await page.evaluate(() => lastRow('product.bin').dataset.phase);
}

/**
 * The renderers' main-thread tasks of 50 ms or more in a Chromium trace: wall and
 * thread (CPU) milliseconds, and the three longest events inside each.
 */
function longMainThreadTasks(trace) {
  const events = JSON.parse(trace.toString()).traceEvents ?? [];
  const main = new Set(events
    .filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain')
    .map((e) => `${e.pid}:${e.tid}`));
  const onMain = events.filter((e) => e.ph === 'X' && main.has(`${e.pid}:${e.tid}`));
  return onMain
    .filter((e) => e.name === 'ThreadControllerImpl::RunTask' && e.dur >= 50000)
    .map((task) => ({
      ms: Math.round(task.dur / 1000),
      cpuMs: Math.round((task.tdur ?? 0) / 1000),
      inside: onMain
        .filter((e) => e !== task && e.pid === task.pid && e.tid === task.tid && e.ts >= task.ts && e.ts < task.ts + task.dur)
        .sort((a, b) => b.dur - a.dur)
        .slice(0, 3)
        .map((e) => `${e.name} ${Math.round(e.dur / 1000)} ms (cpu ${Math.round((e.tdur ?? 0) / 1000)})`),
    }));
}

/** WEB_FILE sent by Chromium alone (see WEB_SCENARIO=floor); the time it took. */
async function floorScenario(page) {
  const http = await import('node:http');
  const sink = http.createServer((req, res) => {
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-methods', 'PUT');
    req.on('data', () => {});
    req.on('end', () => res.end());
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  try {
    await page.setInputFiles('#file', env('WEB_FILE'));
    result.uploadMs = await page.evaluate(async ({ url, part }) => {
      const file = document.getElementById('file').files[0];
      const started = performance.now();
      let next = 0;
      await Promise.all([0, 1, 2, 3].map(async () => {
        for (let at = next; at < file.size; at = next) {
          next += part;
          const res = await fetch(url, { method: 'PUT', body: file.slice(at, Math.min(at + part, file.size)) });
          if (!res.ok) throw new Error(`the sink answered ${res.status}`);
        }
      }));
      return Math.round(performance.now() - started);
    }, { url: `http://127.0.0.1:${sink.address().port}/`, part: Number(env('WEB_PART_BYTES')) });
  } finally {
    sink.close();
  }
}

try {
  const context = await browser.newContext();
  if (process.env.WEB_TRACE) {
    await browser.startTracing(undefined, { categories: ['toplevel', 'devtools.timeline', 'v8', 'disabled-by-default-devtools.timeline'] });
  }
  if (process.env.WEB_SCENARIO === 'handle') {
    await handleScenario(context);
  } else {
    const page = await openTab(context);
    if (process.env.WEB_SCENARIO === 'queue') await queueScenario(page);
    else if (process.env.WEB_SCENARIO === 'bench') await benchScenario(page);
    else if (process.env.WEB_SCENARIO === 'floor') await floorScenario(page);
    else if (process.env.WEB_SCENARIO === 'hash') await hashScenario(page);
    else if (process.env.WEB_SCENARIO === 'flaky') await flakyScenario(page);
    else await resumeScenario(page);
    result.log.push(...(await page.$$eval('#log div', (ds) => ds.map((d) => d.textContent))));
  }
  if (process.env.WEB_TRACE) result.mainThreadLongTasks = longMainThreadTasks(await browser.stopTracing());
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
