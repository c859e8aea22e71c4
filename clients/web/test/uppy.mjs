// Drives the Uppy test page (test/browser/uppy.html) in WEB_BROWSER (chromium or
// firefox): a WEB_SIZE file added to the Dashboard and uploaded through the
// package's plugin; its PUTs after the first WEB_STOP_AFTER are held, and once
// those parts are stored the page is reloaded; golden-retriever restores the file, the restore is confirmed, and the
// plugin continues the same upload with only the missing parts, shows every
// stage as postprocess progress to ready, and hands it to the app, which submits
// an item. Screenshots: WEB_SCREENSHOT_MID (before the reload), WEB_SCREENSHOT_DONE.
// Output: one JSON line on stdout with what happened.

import { serve } from "../serve.mjs";
import { launch } from "./launch.mjs";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const server = await serve();
const url = `http://127.0.0.1:${server.address().port}/test/browser/uppy.html`;
const run = { api: env("WEB_API"), token: env("WEB_TOKEN") };
const partBytes = 5 << 20;
const browser = await launch(env("WEB_BROWSER"), process.env.WEB_SERVER_CERT);
try {
  const page = await browser.newPage();
  const logs = [];
  page.on("pageerror", (e) => logs.push(`page error: ${e.message}`));
  page.on("console", (m) => logs.push(m.text()));
  await page.goto(url, { waitUntil: "load" });
  await page.evaluate((r) => window.startUppy(r), run);
  const md5 = await page.evaluate((size) => window.addRandomFile(size), Number(env("WEB_SIZE")));
  await page.evaluate((n) => {
    window.holdPutsAfter = n;
    window.page.uppy.upload();
  }, Number(env("WEB_STOP_AFTER")));
  const stopAt = Number(env("WEB_STOP_AFTER")) * partBytes;
  await page
    .waitForFunction(
      (at) => (window.page.uppy.getFiles()[0]?.progress?.bytesUploaded || 0) >= at || window.page.errors.length > 0,
      { timeout: 120_000 },
      stopAt,
    )
    .catch(async (e) => {
      const progress = await page.evaluate(() => JSON.stringify(window.page.uppy.getFiles()[0]?.progress));
      throw new Error(`the first parts were not stored: ${progress}\n${logs.join("\n")}`, { cause: e });
    });
  const before = await page.evaluate(() => {
    const file = window.page.uppy.getFiles()[0];
    return { uploadId: file.meta.uploadServiceId, bytes: file.progress.bytesUploaded, errors: window.page.errors };
  });
  if (before.errors.length) throw new Error(`before the reload: ${before.errors.join("; ")}`);
  // golden-retriever writes its state a moment after each change.
  await new Promise((r) => setTimeout(r, 1000));
  if (process.env.WEB_SCREENSHOT_MID) await page.screenshot({ path: process.env.WEB_SCREENSHOT_MID, fullPage: true });

  await page.reload({ waitUntil: "load" });
  await page.evaluate((r) => window.startUppy(r), run);
  await page
    .waitForFunction(() => window.page.uppy.getFiles()[0]?.data?.size > 0, { timeout: 30_000 })
    .catch(async (e) => {
      const files = await page.evaluate(() =>
        window.page.uppy.getFiles().map((f) => ({ name: f.name, size: f.data?.size, ghost: f.isGhost, meta: f.meta })),
      );
      throw new Error(`no file restored after the reload: ${JSON.stringify(files)}\n${logs.join("\n")}`, { cause: e });
    });
  const restored = await page.evaluate(() => window.page.uppy.getFiles()[0].meta.uploadServiceId);
  await page.evaluate(() => window.page.uppy.emit("restore-confirmed"));
  await page.waitForFunction(() => window.page.ready.length > 0 || window.page.errors.length > 0, {
    timeout: 180_000,
  });
  const after = await page.evaluate(() => ({
    puts: window.page.puts,
    bytesAtStart: window.page.bytesAtStart,
    stages: window.page.stages,
    errors: window.page.errors,
    ready: window.page.ready.map((r) => ({ uploadId: r.upload.uploadId, md5: r.upload.metadata?.md5Hex })),
    dashboard: document.querySelector(".uppy-Dashboard")?.textContent?.slice(0, 400),
  }));
  if (after.errors.length) throw new Error(`after the reload: ${after.errors.join("; ")}\n${logs.join("\n")}`);
  if (process.env.WEB_SCREENSHOT_DONE) await page.screenshot({ path: process.env.WEB_SCREENSHOT_DONE, fullPage: true });
  const item = await page.evaluate(() => window.submitReady());
  console.log(
    JSON.stringify({
      browser: env("WEB_BROWSER"),
      md5,
      uploadIdBeforeReload: before.uploadId,
      bytesBeforeReload: before.bytes,
      uploadIdRestored: restored,
      bytesAtResume: after.bytesAtStart,
      putsAfterReload: after.puts,
      stages: after.stages,
      ready: after.ready,
      item,
    }),
  );
} finally {
  await browser.close();
  server.close();
}
