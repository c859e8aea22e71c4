// Drives the page in headless Chromium (Debian's, through playwright-core): uploads a
// file, reloads in the middle, chooses the file again and checks the upload continues
// instead of restarting, follows every stage to ready, saves a screenshot.
// Input (environment): WEB_API, WEB_TOKEN, WEB_FILE, WEB_SCREENSHOT, CHROMIUM, and
// WEB_SERVER_CERT: the certificate (PEM) an https:// WEB_API presents, issued by the
// test CA, which Chromium is told to trust by its public key (and nothing else).
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
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', ...trust],
});
const result = { putsBeforeReload: 0, putsAfterReload: 0, stages: {}, log: [] };
try {
  const page = await (await browser.newContext()).newPage();
  let phase = 'before';
  page.on('request', (r) => {
    if (r.method() === 'PUT') result[phase === 'before' ? 'putsBeforeReload' : 'putsAfterReload'] += 1;
  });
  page.on('console', (m) => result.log.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => result.log.push(`page error: ${e.message}`));
  await page.goto(page_url);
  await page.setInputFiles('#file', env('WEB_FILE'));
  await page.click('#start');
  // Reload once a few parts are stored, with others in flight.
  await page.waitForFunction(() => Number(document.body.dataset.partsDone || 0) >= 3, null, { timeout: 60000 });
  result.partsBeforeReload = Number(await page.evaluate(() => document.body.dataset.partsDone));
  result.uploadId = await page.evaluate(() => document.body.dataset.uploadId);
  phase = 'after';
  await page.reload();
  result.offeredResume = await page.textContent('#resume');
  await page.setInputFiles('#file', env('WEB_FILE'));
  await page.click('#start');
  await page.waitForFunction(() => ['ready', 'failed', 'rejected', 'quarantined', 'error'].includes(document.body.dataset.phase), null, { timeout: 120000 });
  result.phase = await page.evaluate(() => document.body.dataset.phase);
  result.uploadIdAfterReload = await page.evaluate(() => document.body.dataset.uploadId);
  result.stages = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('[data-stage]')].map((r) => [r.dataset.stage, r.dataset.status]),
  ));
  result.result = await page.textContent('#result');
  result.log.push(...(await page.$$eval('#log div', (ds) => ds.map((d) => d.textContent))));
  await page.screenshot({ path: env('WEB_SCREENSHOT'), fullPage: true });
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
