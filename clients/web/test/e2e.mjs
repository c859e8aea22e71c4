// Drives the reference page (index.html, page/app.ts) in WEB_BROWSER: chromium
// (Debian's, over CDP) or firefox (Debian's firefox-esr, over WebDriver BiDi), both
// through puppeteer-core (./launch.mjs). The page is served by ../serve.mjs, which
// hands it the API's origin (config.json) and the token (session): nothing comes
// through the page's URL.
// WEB_SCENARIO=resume (the default): uploads WEB_FILE, reloads in the middle, chooses
// WEB_OTHER_FILE (same name and size, refused) and then the file again, and checks
// the upload continues instead of restarting, to ready; reports the PUTs and signing
// calls it saw and the page's longest main-thread timer gap; WEB_SCREENSHOT.
// WEB_SCENARIO=queue: the three WEB_FILES at once (see queueScenario);
// WEB_SCREENSHOT_QUEUE and WEB_SCREENSHOT_ITEM.
// WEB_SCENARIO=handle (Chromium): WEB_FILE through a kept file handle, the tab
// closed and another opened (see handleScenario). WEB_SCENARIO=bench: WEB_FILE once,
// timed. WEB_SCENARIO=floor: WEB_FILE's parts of WEB_PART_BYTES, four at a time, PUT
// by the page straight from the file to a local sink that discards them — no
// hashing, no signing, no store: what the browser alone costs to send the bytes.
// WEB_SCENARIO=flaky: WEB_FILE with one PUT cut and one held past its URL's life.
// WEB_TRACE=1 (Chromium): the report names every main-thread task of 50 ms or more:
// its wall time, the CPU time the thread had in it, and what took longest inside it.
// Also: WEB_API, WEB_TOKEN, WEB_SERVER_CERT (the https:// API's certificate), and
// WEB_PART_DIGEST=md5 to have the page pin parts by MD5 (default: SHA-256).
// Output: one JSON line on stdout with what happened; exit 1 on any failure.

import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { serve } from "../serve.mjs";
import { launch } from "./launch.mjs";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const which = env("WEB_BROWSER");
const server = await serve({ api: env("WEB_API"), token: env("WEB_TOKEN"), partDigest: process.env.WEB_PART_DIGEST });
const pageUrl = `http://127.0.0.1:${server.address().port}/`;
// In the page, before its own script: the last queue row of a file name, the phases
// that end a file, and a count of every way the page could ask for a file (the
// picker, a click on a file input).
const helpers = `window.lastRow = (name) => [...document.querySelectorAll('#queue .file')].filter((r) => r.dataset.name === name).at(-1);
window.ENDS = ['ready', 'failed', 'rejected', 'quarantined', 'expired', 'aborted', 'error', 'stored'];
window.pickerCalls = 0;
if (window.showOpenFilePicker) { const pick = window.showOpenFilePicker; window.showOpenFilePicker = (...a) => { window.pickerCalls += 1; return pick.apply(window, a); }; }
document.addEventListener('click', (e) => { if (e.target && e.target.type === 'file') window.pickerCalls += 1; }, true);`;

const result = { browser: which, putsBeforeReload: 0, putsForOtherFile: 0, putsAfterReload: 0, signCallsAfterReload: 0, stages: {}, log: [] };
const counter = { before: "putsBeforeReload", other: "putsForOtherFile", after: "putsAfterReload" };
const tally = { phase: "before" };

/** Waits (polling every 250 ms, which both browsers do alike) until `fn(arg)` in the page is truthy. */
const until = (page, fn, arg, timeout = 120_000) => page.waitForFunction(fn, { timeout, polling: 250 }, arg);
const text = (page, selector) => page.$eval(selector, (e) => e.textContent);
/** Sets the page's file input to `paths`. */
async function choose(page, ...paths) {
  const input = await page.$("#file");
  await input.uploadFile(...paths);
}
/** Waits until the page has its API and wired its buttons. */
const loaded = (page) => until(page, () => document.body.dataset.ready === "1", undefined, 30_000);

/** A new tab on the page, its requests counted and its messages logged. */
async function openTab(browser) {
  const page = await browser.newPage();
  page.on("request", (r) => {
    if (r.method() === "PUT") result[counter[tally.phase]] += 1;
    // Preflights (OPTIONS) are requests too in a CDP or BiDi log: only the calls count.
    if (tally.phase === "after" && r.method() === "POST" && /\/(SignParts|SignPart)$/.test(r.url())) result.signCallsAfterReload += 1;
  });
  page.on("console", (m) => result.log.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => result.log.push(`page error: ${e.message}`));
  await page.evaluateOnNewDocument(helpers);
  await page.goto(pageUrl, { waitUntil: "load" });
  await loaded(page);
  result.partDigest = await page.evaluate(() => document.body.dataset.partDigest);
  return page;
}

/**
 * Three files at once (WEB_FILES: the item's file, an EICAR file, a large file to
 * abort), by keyboard where a seller would use it: the large one aborted once two of
 * its parts are stored, the EICAR one quarantined, the first submitted as an item,
 * followed to stored and downloaded back through its version's link.
 */
async function queueScenario(page) {
  const [keep, eicar, big] = env("WEB_FILES").split(":");
  const name = (p) => p.split("/").at(-1);
  await choose(page, keep, eicar, big);
  await page.focus("#start");
  await page.keyboard.press("Enter");
  await until(page, (n) => Number(lastRow(n)?.dataset.partsDone || 0) >= 2, name(big), 60_000);
  await page.screenshot({ path: env("WEB_SCREENSHOT_QUEUE"), fullPage: true });
  result.abortedUploadId = await page.evaluate((n) => lastRow(n).dataset.uploadId, name(big));
  await page.focus(`[aria-label="Abort ${name(big)}"]`);
  await page.keyboard.press("Enter");
  for (const p of [keep, eicar, big]) await until(page, (n) => ENDS.includes(lastRow(n)?.dataset.phase), name(p));
  const names = [keep, eicar, big].map(name);
  result.files = await page.evaluate(
    (ns) => Object.fromEntries(ns.map((n) => [n, {
      phase: lastRow(n).dataset.phase,
      reason: lastRow(n).querySelector(".reason").textContent,
      uploadId: lastRow(n).dataset.uploadId,
    }])),
    names,
  );
  result.announced = await text(page, "#announce");
  result.announceLive = await page.$eval("#announce", (e) => e.getAttribute("aria-live"));
  await page.focus("#title");
  await page.keyboard.type("Field recordings");
  await page.focus("#submit");
  await page.keyboard.press("Enter");
  await until(page, () => {
    const box = document.getElementById("item");
    return box.dataset.state === "failed" || (box.dataset.state === "stored" && box.dataset.versions);
  });
  result.item = await page.evaluate(() => ({
    id: document.getElementById("item").dataset.itemId,
    state: document.getElementById("item").dataset.state,
    versions: [...document.querySelectorAll("#versions a")].map((a) => ({ text: a.textContent, href: a.href, md5: a.dataset.md5 })),
  }));
  result.phasesAfterItem = await page.evaluate((ns) => Object.fromEntries(ns.map((n) => [n, lastRow(n).dataset.phase])), names);
  await page.screenshot({ path: env("WEB_SCREENSHOT_ITEM"), fullPage: true });
  for (const v of result.item.versions) {
    const res = await fetch(v.href);
    v.status = res.status;
    v.downloadedMd5 = createHash("md5").update(Buffer.from(await res.arrayBuffer())).digest("hex");
  }
}

/**
 * One file, reloaded once three parts are stored; another file of the same name and
 * size chosen first after the reload (refused), then the right one (continued).
 */
async function resumeScenario(page) {
  await choose(page, env("WEB_FILE"));
  await page.click("#start");
  await until(page, () => Number(lastRow("product.bin")?.dataset.partsDone || 0) >= 3, undefined, 60_000);
  result.partsBeforeReload = Number(await page.evaluate(() => lastRow("product.bin").dataset.partsDone));
  result.longestTimerGapBeforeReloadMs = Number(await page.evaluate(() => document.body.dataset.longestTimerGapMs || -1));
  result.longTasksBeforeReload = await page.evaluate(() => window.longTasks);
  result.uploadId = await page.evaluate(() => lastRow("product.bin").dataset.uploadId);
  await page.reload({ waitUntil: "load" });
  await loaded(page);
  // PUTs the old page sent until it unloaded counted as before the reload.
  tally.phase = "other";
  await until(page, () => document.getElementById("resume").textContent.trim() !== "", undefined, 30_000);
  result.offeredResume = await text(page, "#resume");
  if (process.env.WEB_OTHER_FILE) {
    // Another file of the same name and size: refused before anything is sent.
    await choose(page, process.env.WEB_OTHER_FILE);
    await page.click("#start");
    await until(page, () => lastRow("product.bin")?.dataset.phase === "error", undefined, 60_000);
    result.otherFileRefusal = await page.evaluate(() => lastRow("product.bin").querySelector(".reason").textContent);
  }
  tally.phase = "after";
  await choose(page, env("WEB_FILE"));
  await page.click("#start");
  if (process.env.WEB_SCREENSHOT_MID) {
    await until(page, () => Number(lastRow("product.bin")?.dataset.partsDone || 0) >= 1, undefined, 60_000);
    await page.screenshot({ path: process.env.WEB_SCREENSHOT_MID, fullPage: true });
  }
  await until(page, () => ENDS.includes(lastRow("product.bin")?.dataset.phase));
  result.phase = await page.evaluate(() => lastRow("product.bin").dataset.phase);
  result.longestTimerGapMs = Number(await page.evaluate(() => document.body.dataset.longestTimerGapMs || -1));
  result.longTasks = await page.evaluate(() => window.longTasks);
  result.uploadIdAfterReload = await page.evaluate(() => lastRow("product.bin").dataset.uploadId);
  result.stages = await page.evaluate(() =>
    Object.fromEntries([...lastRow("product.bin").querySelectorAll("[data-stage]")].map((r) => [r.dataset.stage, r.dataset.status])),
  );
  result.result = await page.evaluate(() => lastRow("product.bin").querySelector(".reason").textContent);
  await page.screenshot({ path: env("WEB_SCREENSHOT"), fullPage: true });
}

/**
 * A file handed to the page as a file handle (from the origin's private file system:
 * the same FileSystemFileHandle the picker gives, which a headless browser cannot
 * be made to show), the tab closed once three parts are stored, a new tab opened:
 * the page offers to continue, reads the file from the kept handle and sends the rest.
 */
async function handleScenario(browser) {
  let page = await openTab(browser);
  await choose(page, env("WEB_FILE"));
  await page.evaluate(async () => {
    const input = document.getElementById("file");
    const file = input.files[0];
    input.value = "";
    const root = await navigator.storage.getDirectory();
    const handle = await root.getFileHandle(file.name, { create: true });
    const out = await handle.createWritable();
    await out.write(file);
    await out.close();
    await window.addHandles([handle]);
  });
  await until(page, () => Number(lastRow("product.bin")?.dataset.partsDone || 0) >= 3, undefined, 60_000);
  result.partsBeforeReload = Number(await page.evaluate(() => lastRow("product.bin").dataset.partsDone));
  result.uploadId = await page.evaluate(() => lastRow("product.bin").dataset.uploadId);
  await page.close();
  tally.phase = "after";
  page = await openTab(browser);
  await page.waitForSelector("#resume button.continue", { timeout: 30_000 });
  result.offeredResume = await text(page, "#resume");
  await page.click("#resume button.continue");
  await until(page, () => ENDS.includes(lastRow("product.bin")?.dataset.phase));
  result.fileChoosers = await page.evaluate(() => window.pickerCalls);
  result.phase = await page.evaluate(() => lastRow("product.bin").dataset.phase);
  result.uploadIdAfterReload = await page.evaluate(() => lastRow("product.bin").dataset.uploadId);
  result.result = await page.evaluate(() => lastRow("product.bin").querySelector(".reason").textContent);
  result.log.push(...(await page.$$eval("#log div", (ds) => ds.map((d) => d.textContent))));
}

/**
 * WEB_FILE uploaded while the network misbehaves, by the test's hand: the first PUT
 * of a part is cut (connection reset), the next one held 3 s, past the life of its
 * URL (the server signs for 2 s here), before it goes on to the store.
 */
async function flakyScenario(page) {
  result.cut = 0;
  result.held = 0;
  await page.setRequestInterception(true);
  page.on("request", async (request) => {
    const isPart = request.method() === "PUT" && new URL(request.url()).searchParams.get("x-id") === "UploadPart";
    if (!isPart) return request.continue();
    if (result.cut === 0) {
      result.cut += 1;
      return request.abort("connectionreset");
    }
    if (result.held === 0) {
      result.held += 1;
      await new Promise((r) => setTimeout(r, 3000));
    }
    return request.continue();
  });
  await benchScenario(page);
}

/** WEB_FILE uploaded once; the time from the click to CompleteUpload's answer. */
async function benchScenario(page) {
  await choose(page, env("WEB_FILE"));
  // Timed in the page, from the click to the row leaving 'uploading', watched by a
  // MutationObserver: no polling from here competes with the upload for the CPU.
  result.uploadMs = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const done = () => !["queued", "uploading"].includes(lastRow("product.bin")?.dataset.phase ?? "queued");
        const started = performance.now();
        const observer = new MutationObserver(() => {
          if (done()) {
            observer.disconnect();
            resolve(Math.round(performance.now() - started));
          }
        });
        observer.observe(document.getElementById("queue"), { subtree: true, childList: true, attributes: true, attributeFilter: ["data-phase"] });
        document.getElementById("start").click();
      }),
  );
  result.phase = await page.evaluate(() => lastRow("product.bin").dataset.phase);
}

/** WEB_FILE sent by the browser alone (see WEB_SCENARIO=floor); the time it took. */
async function floorScenario(page) {
  const sink = createServer((req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-allow-methods", "PUT");
    req.on("data", () => {});
    req.on("end", () => res.end());
  });
  await new Promise((r) => sink.listen(0, "127.0.0.1", r));
  try {
    await choose(page, env("WEB_FILE"));
    result.uploadMs = await page.evaluate(
      async ({ url, part }) => {
        const file = document.getElementById("file").files[0];
        const started = performance.now();
        let next = 0;
        await Promise.all(
          [0, 1, 2, 3].map(async () => {
            for (let at = next; at < file.size; at = next) {
              next += part;
              const res = await fetch(url, { method: "PUT", body: file.slice(at, Math.min(at + part, file.size)) });
              if (!res.ok) throw new Error(`the sink answered ${res.status}`);
            }
          }),
        );
        return Math.round(performance.now() - started);
      },
      { url: `http://127.0.0.1:${sink.address().port}/`, part: Number(env("WEB_PART_BYTES")) },
    );
  } finally {
    sink.close();
  }
}

/**
 * The renderers' main-thread tasks of 50 ms or more in a Chromium trace: wall and
 * thread (CPU) milliseconds, and the three longest events inside each.
 */
function longMainThreadTasks(trace) {
  const events = JSON.parse(trace.toString()).traceEvents ?? [];
  const main = new Set(
    events.filter((e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain").map((e) => `${e.pid}:${e.tid}`),
  );
  const onMain = events.filter((e) => e.ph === "X" && main.has(`${e.pid}:${e.tid}`));
  return onMain
    .filter((e) => e.name === "ThreadControllerImpl::RunTask" && e.dur >= 50000)
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

const browser = await launch(which, process.env.WEB_SERVER_CERT);
try {
  const scenario = process.env.WEB_SCENARIO || "resume";
  if (scenario === "handle") {
    await handleScenario(browser);
  } else {
    const page = await openTab(browser);
    const trace = process.env.WEB_TRACE && which === "chromium";
    if (trace) {
      await page.tracing.start({ categories: ["toplevel", "devtools.timeline", "v8", "disabled-by-default-devtools.timeline"] });
    }
    const run = { queue: queueScenario, bench: benchScenario, floor: floorScenario, flaky: flakyScenario, resume: resumeScenario }[scenario];
    if (!run) throw new Error(`no scenario ${scenario}`);
    await run(page);
    if (trace) result.mainThreadLongTasks = longMainThreadTasks(await page.tracing.stop());
    result.log.push(...(await page.$$eval("#log div", (ds) => ds.map((d) => d.textContent))));
  }
} catch (e) {
  result.error = String(e?.stack || e);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
