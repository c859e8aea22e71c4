// Drives the page in headless Chromium (Debian's, through playwright-core).
// WEB_SCENARIO=resume (the default): uploads WEB_FILE, reloads in the middle, chooses
// WEB_OTHER_FILE (same name and size, refused) and then the file again, and checks
// the upload continues instead of restarting, to ready; reports the PUTs and signing
// calls it saw and the page's longest main-thread timer gap; WEB_SCREENSHOT.
// WEB_SCENARIO=queue: the three WEB_FILES at once (see queueScenario);
// WEB_SCREENSHOT_QUEUE and WEB_SCREENSHOT_ITEM.
// WEB_SCENARIO=handle: WEB_FILE through a kept file handle, the tab closed and
// another opened (see handleScenario). WEB_SCENARIO=bench: WEB_FILE once, timed.
// WEB_SCENARIO=hash: WEB_FILE hashed by the page's workers under a main-thread timer.
// WEB_SCENARIO=flaky: WEB_FILE with one PUT cut and one held past its URL's life.
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
    return { partMd5s: md5s, hashMs, longestTimerGapMs: gap, workers: pool.size };
  }));
  result.longTasks = await page.evaluate(() => window.longTasks);
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
  const started = Date.now();
  await page.click('#start');
  await page.waitForFunction(() => !['queued', 'uploading'].includes(lastRow('product.bin')?.dataset.phase ?? 'queued'),
    null, { timeout: 900000, polling: 50 });
  result.uploadMs = Date.now() - started;
  result.phase = await page.evaluate(() => lastRow('product.bin').dataset.phase);
}

try {
  const context = await browser.newContext();
  if (process.env.WEB_SCENARIO === 'handle') {
    await handleScenario(context);
  } else {
    const page = await openTab(context);
    if (process.env.WEB_SCENARIO === 'queue') await queueScenario(page);
    else if (process.env.WEB_SCENARIO === 'bench') await benchScenario(page);
    else if (process.env.WEB_SCENARIO === 'hash') await hashScenario(page);
    else if (process.env.WEB_SCENARIO === 'flaky') await flakyScenario(page);
    else await resumeScenario(page);
    result.log.push(...(await page.$$eval('#log div', (ds) => ds.map((d) => d.textContent))));
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
