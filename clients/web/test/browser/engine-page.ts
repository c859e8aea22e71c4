// The test page's script (bundled by scripts/bundle.mjs): the package's engine in
// a real browser, through the flow the Node script runs too (../engine-flow.ts),
// with Web Worker hashing and a progress bar, stages and status for a person.
// The driver (test/browser.mjs) passes the API and the token by calling
// `window.runEngine`, never through the page's URL.

import {
  Stage,
  StageStatus,
  UploadState,
  WorkerHasher,
  createBrowserTransport,
  createUploadClients,
} from "../../src/index.js";
import { hex, md5 } from "../../src/md5.js";
import { stopRefuseResume } from "../engine-flow.js";

interface Run {
  api: string;
  token: string;
  size: number;
  stopAfter: number;
}

declare global {
  interface Window {
    runEngine(run: Run): Promise<Record<string, unknown>>;
    hashChosenFile(partBytes: number): Promise<Record<string, unknown>>;
    longTasks: { at: number; ms: number }[];
  }
}

// Every task that held the main thread 50 ms or more (the Long Tasks API, where the
// browser has it: Chromium does, Firefox does not).
window.longTasks = [];
if (PerformanceObserver.supportedEntryTypes?.includes("longtask")) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.longTasks.push({ at: Math.round(e.startTime), ms: Math.round(e.duration) });
  }).observe({ type: "longtask", buffered: true });
}

const $ = (id: string) => document.getElementById(id)!;
const say = (text: string) => {
  $("status").textContent = text;
};

function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

window.runEngine = async ({ api, token, size, stopAfter }) => {
  const hasher = new WorkerHasher(new URL("./hash-worker.js", import.meta.url));
  try {
    const result = await stopRefuseResume({
      clients: createUploadClients(createBrowserTransport({ baseUrl: api, token })),
      hasher,
      randomBytes,
      md5Hex: (bytes) => hex(md5(bytes)),
      size,
      stopAfter,
      onPart: (stored, of) => {
        ($("bar") as HTMLProgressElement).value = stored / of;
        say(`${stored} of ${of} parts stored`);
      },
      onPhase: (phase) => {
        document.body.dataset.phase = phase;
      },
      onUpdate: (update) => {
        say(`the upload is ${UploadState[update.upload?.state ?? 0].toLowerCase()}`);
        $("stages").replaceChildren(
          ...update.stages.flatMap((s) => {
            const term = document.createElement("dt");
            term.textContent = Stage[s.stage].toLowerCase();
            const what = document.createElement("dd");
            what.textContent = StageStatus[s.status].toLowerCase();
            return [term, what];
          }),
        );
      },
    });
    say(`stored as version 1 of item ${result.itemId}`);
    return { userAgent: navigator.userAgent, ...result };
  } finally {
    hasher.close();
  }
};

/**
 * The file chosen in #file hashed in parts of `partBytes` by a WorkerHasher while a
 * 10 ms timer runs on the main thread: every part's MD5, the time, the timer's
 * longest wait, and the long tasks that overlapped the hashing.
 */
window.hashChosenFile = async (partBytes) => {
  const file = ($("file") as HTMLInputElement).files![0];
  const hasher = new WorkerHasher(new URL("./hash-worker.js", import.meta.url));
  let last = performance.now();
  let gap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 10);
  const started = performance.now();
  try {
    const parts: Promise<Uint8Array>[] = [];
    for (let at = 0; at < file.size; at += partBytes) parts.push(hasher.hash(file, at, Math.min(partBytes, file.size - at)));
    const partMd5s = (await Promise.all(parts)).map(hex);
    const hashMs = performance.now() - started;
    const longTasksWhileHashing = window.longTasks.filter((t) => t.at + t.ms > started && t.at < started + hashMs);
    return { partMd5s, hashMs, longestTimerGapMs: gap, workers: hasher.size, longTasksWhileHashing, userAgent: navigator.userAgent };
  } finally {
    clearInterval(timer);
    hasher.close();
  }
};
