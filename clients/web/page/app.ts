// The reference page on the package's engine: files chosen or dropped join a queue;
// each is uploaded (parts hashed in Web Workers, signed in batches, PUT straight to
// the store), can be aborted, is followed through every processing stage and ends
// with its outcome in words. Ready files are submitted as an item, followed to
// stored, and its versions listed with download links. Interrupted uploads are
// offered again after a reload (from a kept file handle where the browser has them,
// else by choosing the same file). Screen readers hear every change (#announce).
// The API's origin and the token come from the serving origin (./session.ts).

import {
  ItemKind,
  OtherFileError,
  SETTLED,
  Stage,
  SubmissionState,
  type Upload,
  UploadError,
  UploadState,
  type UploadEvent,
  Sha256Hasher,
  WorkerHasher,
  createBrowserTransport,
  createUploadClients,
  submitItem,
  uploadBlob,
  watchItem,
  watchUpload,
  webCryptoAvailable,
} from "../src/index.js";
import * as handles from "./handles.js";
import { type Phase, nameOf, outcome, phaseOf, rowFor, showStage, statusWord } from "./rows.js";
import { pageConfig, sessionToken } from "./session.js";

interface Entry {
  file: File;
  handle?: FileSystemFileHandle;
  row: HTMLLIElement;
  phase: Phase;
  upload?: Upload;
  controller: AbortController;
  aborted: boolean;
  abortSent: boolean;
}

declare global {
  interface Window {
    addHandles(list: FileSystemFileHandle[]): Promise<void>;
    longTasks: { at: number; ms: number }[];
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const config = await pageConfig();
const clients = createUploadClients(createBrowserTransport({ baseUrl: config.api, token: sessionToken() }));
// Parts are pinned by SHA-256 from Web Crypto where the page has it (https, and
// localhost): native, where MD5 runs in JavaScript; by MD5 in Web Workers elsewhere,
// or where the configuration says the store verifies no SHA-256.
const hasher =
  config.partDigest === "sha256" && webCryptoAvailable()
    ? new Sha256Hasher(2)
    : new WorkerHasher(new URL("./hash-worker.js", import.meta.url));
const entries: Entry[] = [];

// An upload begun here is remembered by file name and size (its id only, never a
// token), so that after a reload the same file continues it.
const savedKey = (file: File) => `upload:${file.name}:${file.size}`;
interface Saved {
  key: string;
  uploadId: string;
  name: string;
}
function savedUploads(): Saved[] {
  const out: Saved[] = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key?.startsWith("upload:")) out.push({ key, ...JSON.parse(localStorage.getItem(key)!) });
  }
  return out;
}

// How responsive the page stays: the longest gap between ticks of a 10 ms timer
// while parts are hashed and sent, and every task that held the main thread 50 ms
// or more (the Long Tasks API, where the browser has it), kept for the browser tests.
let lastTick = performance.now();
let longestGap = 0;
window.longTasks = [];
if (PerformanceObserver.supportedEntryTypes?.includes("longtask")) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.longTasks.push({ at: Math.round(e.startTime), ms: Math.round(e.duration) });
  }).observe({ type: "longtask", buffered: true });
}
setInterval(() => {
  const now = performance.now();
  if (document.body.dataset.phase === "uploading") {
    longestGap = Math.max(longestGap, now - lastTick);
    document.body.dataset.longestTimerGapMs = longestGap.toFixed(0);
  }
  lastTick = now;
}, 10);

function log(text: string): void {
  const line = document.createElement("div");
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(line);
}

/** Says `text` to screen readers (a polite live region) and logs it. */
function announce(text: string): void {
  $("announce").textContent = text;
  log(text);
}

/** A failure as a sentence: the service's own words for its refusals. */
const sentence = (e: unknown): string =>
  e instanceof UploadError ? e.rawMessage : e instanceof Error ? e.message : String(e);

/** Sets a file's phase, what its row says, and the page's phase (for the tests). */
function setPhase(entry: Entry, phase: Phase, words?: string): void {
  entry.phase = phase;
  entry.row.dataset.phase = phase;
  entry.row.querySelector(".state")!.textContent = phase;
  if (words !== undefined) entry.row.querySelector(".reason")!.textContent = words;
  entry.row.querySelector<HTMLButtonElement>(".abort")!.hidden = !["queued", "uploading"].includes(phase);
  const any = (p: Phase) => entries.some((e) => e.phase === p);
  document.body.dataset.phase = any("uploading") ? "uploading" : any("processing") ? "processing" : "idle";
  $<HTMLButtonElement>("submit").disabled = !any("ready");
}

/** What the engine tells about `entry`'s upload, on its row and in the log. */
function onEvent(entry: Entry, progress: { sent: number; parts: number; began: number }, ev: UploadEvent): void {
  const { file, row } = entry;
  switch (ev.kind) {
    case "started": {
      const u = ev.upload;
      entry.upload = u;
      row.dataset.uploadId = u.uploadId;
      localStorage.setItem(savedKey(file), JSON.stringify({ uploadId: u.uploadId, name: file.name }));
      if (entry.handle) handles.keep(savedKey(file), entry.handle).catch((e) => log(`${file.name}: ${sentence(e)}`));
      if (entry.aborted) void abortUpload(entry);
      const part = Number(u.partSizeBytes);
      const missingBytes = ev.missing.reduce((n, p) => n + Math.min(part, file.size - (p - 1) * part), 0);
      progress.sent = file.size - missingBytes;
      log(`${file.name}: ${ev.resumed ? "continuing" : "created"} upload ${u.uploadId}: ${ev.missing.length} of ${u.partCount} parts to send`);
      showStage(row, "upload", progress.sent, file.size, `${ev.missing.length} parts to send`);
      break;
    }
    case "part-sent": {
      progress.sent += ev.bytes;
      progress.parts += 1;
      row.dataset.partsDone = String(progress.parts);
      const rate = progress.sent / Math.max((performance.now() - progress.began) / 1000, 0.001);
      const eta = (file.size - progress.sent) / Math.max(rate, 1);
      showStage(row, "upload", progress.sent, file.size, `${(rate / 1e6).toFixed(1)} MB/s, eta ${eta.toFixed(0)} s`);
      break;
    }
    case "retrying":
      log(`${file.name}: retrying part ${ev.part} in ${(ev.delayMs / 1000).toFixed(2)} s: ${ev.error}`);
      break;
    case "resigned":
      log(`${file.name}: part ${ev.part}: ${ev.reason === "expired" ? "its URL expired" : "its URL expires soon"}; signing it again`);
      break;
    case "completed":
      break;
  }
}

async function run(entry: Entry): Promise<void> {
  const { file, row } = entry;
  setPhase(entry, "uploading");
  const saved = localStorage.getItem(savedKey(file));
  const progress = { sent: 0, parts: 0, began: performance.now() };
  try {
    const done = await uploadBlob(clients, file, {
      hasher,
      concurrency: 4,
      signal: entry.controller.signal,
      resumeUploadId: saved ? (JSON.parse(saved) as Saved).uploadId : undefined,
      idempotencyKey: crypto.randomUUID(),
      onEvent: (ev) => onEvent(entry, progress, ev),
    });
    entry.upload = done;
    localStorage.removeItem(savedKey(file));
    forgetHandle(entry);
    showStage(row, "upload", file.size, file.size, "done");
    setPhase(entry, "processing");
    announce(`${file.name}: uploaded; scanning and processing`);
    let last = done;
    for await (const update of watchUpload(clients, done.uploadId)) {
      if (update.upload) {
        last = update.upload;
        row.querySelector(".state")!.textContent = nameOf(UploadState, last.state);
      }
      for (const s of update.stages) {
        if (s.stage !== Stage.UPLOAD) showStage(row, nameOf(Stage, s.stage), Number(s.bytesDone), Number(s.bytesTotal), statusWord(s.status));
      }
    }
    if (!SETTLED.has(last.state)) last = (await clients.uploads.getUpload({ uploadId: done.uploadId })).upload ?? last;
    entry.upload = last;
    setPhase(entry, phaseOf(last.state), outcome(last));
    announce(`${file.name}: ${outcome(last) || phaseOf(last.state)}`);
  } catch (e) {
    if (entry.aborted) return;
    const why = e instanceof OtherFileError ? e.message : sentence(e);
    setPhase(entry, "error", `${file.name}: ${why}`);
    announce(`${file.name}: ${why}`);
  } finally {
    void offerResume();
  }
}

/** Stops a file's upload: its PUTs cancelled, the upload aborted (the store frees its parts). */
async function abort(entry: Entry): Promise<void> {
  if (entry.aborted) return;
  entry.aborted = true;
  entry.controller.abort();
  localStorage.removeItem(savedKey(entry.file));
  forgetHandle(entry);
  if (entry.upload) await abortUpload(entry);
  const bar = entry.row.querySelector<HTMLProgressElement>('[data-stage="upload"] progress')!;
  showStage(entry.row, "upload", bar.value, bar.max, "aborted");
  setPhase(entry, "aborted", "Aborted: you stopped this upload and its parts were removed from the store.");
  announce(`${entry.file.name}: aborted`);
}

/** AbortUpload, once per file (also when the abort came before CreateUpload answered). */
async function abortUpload(entry: Entry): Promise<void> {
  if (entry.abortSent || !entry.upload) return;
  entry.abortSent = true;
  try {
    await clients.uploads.abortUpload({ uploadId: entry.upload.uploadId });
  } catch (e) {
    log(`${entry.file.name}: abort: ${sentence(e)}`);
  }
}

function forgetHandle(entry: Entry): void {
  if (entry.handle) handles.forget(savedKey(entry.file)).catch(() => {});
}

/** Queues `files` and starts them; `fileHandles[i]`, when given, is `files[i]`'s handle. */
function add(files: File[], fileHandles: FileSystemFileHandle[] = []): void {
  for (const [i, file] of files.entries()) {
    const entry: Entry = {
      file,
      handle: fileHandles[i],
      row: rowFor($("queue"), file),
      phase: "queued",
      controller: new AbortController(),
      aborted: false,
      abortSent: false,
    };
    entry.row.querySelector(".abort")!.addEventListener("click", () => void abort(entry));
    entries.push(entry);
    setPhase(entry, "queued");
    void run(entry);
  }
}

/** Submits every ready file as one item, follows it to stored, lists its versions. */
async function submitReady(): Promise<void> {
  const ready = entries.filter((e) => e.phase === "ready");
  if (ready.length === 0) return;
  $<HTMLButtonElement>("submit").disabled = true;
  for (const e of ready) setPhase(e, "submitted");
  const box = $("item");
  const title = $<HTMLInputElement>("title").value || ready[0].file.name;
  try {
    const answer = await submitItem(clients, {
      idempotencyKey: crypto.randomUUID(),
      title,
      description: "",
      kind: ItemKind.DIGITAL_FILE,
      files: ready.map((e) => ({ uploadId: e.upload!.uploadId })),
    });
    let item = answer.item!;
    box.dataset.itemId = item.itemId;
    announce(`item "${title}" submitted; saving its files`);
    for await (const update of watchItem(clients, item.itemId)) {
      item = update;
      box.dataset.state = nameOf(SubmissionState, item.state);
      $("item-state").textContent = `Item ${item.itemId}: ${nameOf(SubmissionState, item.state)}`;
    }
    box.dataset.state = nameOf(SubmissionState, item.state);
    if (item.state !== SubmissionState.STORED) {
      for (const e of ready) setPhase(e, "ready");
      announce(`item "${title}" was not stored${item.failure ? `: ${item.failure.message}` : ""}`);
      return;
    }
    for (const e of ready) setPhase(e, "stored", "Stored in the item.");
    announce(`item "${title}" stored`);
    await listVersions(item.itemId);
  } catch (e) {
    for (const r of ready) if (r.phase === "submitted") setPhase(r, "ready");
    announce(`submitting failed: ${sentence(e)}`);
  }
}

/** The item's versions, each a download link. */
async function listVersions(itemId: string): Promise<void> {
  const list = $("versions");
  list.textContent = "";
  const { versions } = await clients.items.listVersions({ itemId });
  for (const v of versions) {
    const li = document.createElement("li");
    const label = `${v.fileName}, version ${v.version}${v.current ? " (current)" : ""}`;
    if (v.quarantined) {
      li.append(`${label}: quarantined (${v.quarantined.signature}); it cannot be downloaded`);
    } else {
      const { url } = await clients.items.getDownloadUrl({ itemId, fileId: v.fileId, version: v.version });
      const a = document.createElement("a");
      a.href = url;
      a.textContent = label;
      a.dataset.md5 = v.md5Hex;
      li.append(a, ` ${v.sizeBytes} bytes, MD5 ${v.md5Hex}`);
    }
    list.append(li);
  }
  $("item").dataset.versions = String(versions.length);
}

/** Queues files from handles (the picker's, or kept ones after a closed tab). */
async function addHandles(list: FileSystemFileHandle[]): Promise<void> {
  const files: File[] = [];
  for (const handle of list) files.push(await handles.fileOf(handle));
  add(files, list);
}
// The picker is a seller's way in; a browser test hands handles the same way.
window.addHandles = addHandles;

/**
 * Offers to continue interrupted uploads: with a kept file handle, one button that
 * reads the file again by itself; without, a request to choose the same file.
 */
async function offerResume(): Promise<void> {
  const active = new Set(entries.filter((e) => ["queued", "uploading"].includes(e.phase)).map((e) => savedKey(e.file)));
  const saved = savedUploads().filter((s) => !active.has(s.key));
  let byKey = new Map<string, FileSystemFileHandle>();
  if (handles.supported()) {
    try {
      byKey = await handles.kept();
    } catch (e) {
      log(`kept files could not be read: ${sentence(e)}`);
    }
  }
  const box = $("resume");
  box.textContent = "";
  for (const s of saved.filter((x) => byKey.has(x.key))) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "continue";
    button.textContent = `Continue ${s.name}`;
    button.addEventListener("click", () => {
      button.remove();
      addHandles([byKey.get(s.key)!]).catch((e) => announce(`${s.name}: ${sentence(e)}`));
    });
    box.append(button, " ");
  }
  const ask = saved.filter((s) => !byKey.has(s.key));
  if (ask.length > 0) {
    box.append(`Interrupted: ${ask.map((s) => s.name).join(", ")}. Choose the same file to continue where it stopped.`);
  }
}

$("start").addEventListener("click", () => {
  const input = $<HTMLInputElement>("file");
  const files = Array.from(input.files ?? []);
  if (files.length === 0) {
    announce("choose one or more files first");
    return;
  }
  input.value = "";
  add(files);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.dataset.over = "1";
});
drop.addEventListener("dragleave", () => delete drop.dataset.over);
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  delete drop.dataset.over;
  add(Array.from(e.dataTransfer?.files ?? []));
});
$("submit").addEventListener("click", () => void submitReady());
if (handles.supported()) {
  // Files chosen here are kept as handles: after a closed tab the page continues
  // their uploads without asking for them again.
  const pick = $<HTMLButtonElement>("pick");
  const w = window as unknown as { showOpenFilePicker(o: { multiple: boolean }): Promise<FileSystemFileHandle[]> };
  pick.hidden = false;
  pick.addEventListener("click", async () => {
    try {
      await addHandles(await w.showOpenFilePicker({ multiple: true }));
    } catch (e) {
      if ((e as Error).name !== "AbortError") announce(`choosing files failed: ${sentence(e)}`);
    }
  });
}
// Which digest pins this page's parts, for a person reading the page's state (and the tests).
document.body.dataset.partDigest = hasher.digest;
document.body.dataset.ready = "1";
void offerResume();
