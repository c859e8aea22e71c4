// Drives the package's engine page (test/browser/engine.html) in a real browser
// through puppeteer-core: WEB_BROWSER=chromium (Debian's, over CDP) or firefox
// (Debian's firefox-esr, over WebDriver BiDi). The page uploads WEB_SIZE random
// bytes, stops after WEB_STOP_AFTER parts, continues with the missing parts,
// watches the upload to ready, submits it and watches the item to stored.
// Screenshots: WEB_SCREENSHOT_MID (while parts are sent) and WEB_SCREENSHOT_DONE.
// WEB_SCENARIO=hash: WEB_FILE chosen in the page and hashed in parts of
// WEB_PART_BYTES by the package's WorkerHasher while a main-thread timer ticks.
// Also WEB_API, WEB_TOKEN, WEB_SERVER_CERT (the https:// API's certificate, which
// Chromium trusts by its public key and Firefox takes as the test's).
// Output: one JSON line on stdout with what happened; exit 1 on any failure.

import { serve } from "../serve.mjs";
import { launch } from "./launch.mjs";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const which = env("WEB_BROWSER");
const server = await serve();
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await launch(which, process.env.WEB_SERVER_CERT);
try {
  const page = await browser.newPage();
  const console_ = [];
  page.on("console", (m) => console_.push(m.text()));
  page.on("pageerror", (e) => console_.push(`page error: ${e.message}`));
  await page.goto(`${origin}/test/browser/engine.html`, { waitUntil: "load" });
  if (process.env.WEB_SCENARIO === "hash") {
    const input = await page.$("#file");
    await input.uploadFile(env("WEB_FILE"));
    const hashed = await page.evaluate((part) => window.hashChosenFile(part), Number(env("WEB_PART_BYTES")));
    console.log(JSON.stringify({ browser: which, ...hashed, log: console_ }));
  } else {
    await engineFlow(page, console_);
  }
} finally {
  await browser.close();
  server.close();
}

/** The engine page's flow (see above), reported on stdout. */
async function engineFlow(page, console_) {
  await page.evaluate(
    (run) => {
      window.enginePromise = window.runEngine(run).then(
        (result) => ({ result }),
        (e) => ({ error: String(e?.stack || e) }),
      );
      window.enginePromise.then(() => {
        window.engineDone = true;
      });
    },
    { api: env("WEB_API"), token: env("WEB_TOKEN"), size: Number(env("WEB_SIZE")), stopAfter: Number(env("WEB_STOP_AFTER")) },
  );
  await page.waitForFunction(() => window.engineDone || Number(document.getElementById("bar").value) > 0, {
    timeout: 60_000,
  });
  if (process.env.WEB_SCREENSHOT_MID) await page.screenshot({ path: process.env.WEB_SCREENSHOT_MID });
  const outcome = await page.evaluate(() => window.enginePromise);
  if (process.env.WEB_SCREENSHOT_DONE) await page.screenshot({ path: process.env.WEB_SCREENSHOT_DONE });
  if (outcome.error) throw new Error(`${outcome.error}\n${console_.join("\n")}`);
  console.log(JSON.stringify({ browser: which, ...outcome.result }));
}
