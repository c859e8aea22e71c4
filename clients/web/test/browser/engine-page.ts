// The test page's script (bundled by scripts/bundle.mjs): the package's engine in
// a real browser. `window.runEngine` sends a file of random bytes until
// `stopAfter` parts are stored, stops it, is refused for another file of the
// same size, continues it with only the missing parts, watches it to ready, submits it as an item and watches that to stored;
// it answers what happened. The driver (test/browser.mjs) passes the API and the
// token by calling it, never through the page's URL.

import {
  ItemKind,
  Stage,
  StageStatus,
  UploadError,
  UploadState,
  WorkerHasher,
  createBrowserTransport,
  createUploadClients,
  submitItem,
  uploadBlob,
  watchItem,
  watchUpload,
} from "../../src/index.js";
import { hex, md5 } from "../../src/md5.js";

interface Run {
  api: string;
  token: string;
  size: number;
  stopAfter: number;
}

declare global {
  interface Window {
    runEngine(run: Run): Promise<Record<string, unknown>>;
  }
}

const $ = (id: string) => document.getElementById(id)!;
const say = (text: string) => {
  $("status").textContent = text;
};

function randomFile(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

window.runEngine = async ({ api, token, size, stopAfter }) => {
  const clients = createUploadClients(createBrowserTransport({ baseUrl: api, token }));
  const hasher = new WorkerHasher(new URL("./hash-worker.js", import.meta.url));
  const bytes = randomFile(size);
  const file = new File([bytes], "engine.bin", { type: "application/octet-stream" });
  const digest = hex(md5(bytes));
  const puts = { first: 0, other: 0, second: 0 };
  let round: keyof typeof puts = "first";
  const counting: typeof fetch = (input, init) => {
    puts[round] += 1;
    return fetch(input, init);
  };
  let partCount = 1;
  let sent = 0;
  const progress = () => {
    ($("bar") as HTMLProgressElement).value = sent / partCount;
  };

  document.body.dataset.phase = "uploading";
  const controller = new AbortController();
  let uploadId = "";
  let sentFirst = 0;
  try {
    await uploadBlob(clients, file, {
      hasher,
      concurrency: 2,
      fetch: counting,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.kind === "started") {
          uploadId = e.upload.uploadId;
          partCount = e.upload.partCount;
        }
        if (e.kind === "part-sent") {
          sent += 1;
          progress();
          say(`part ${e.part} stored (${sent} of ${partCount})`);
          if (++sentFirst >= stopAfter) controller.abort(new Error("stopped on purpose"));
        }
      },
    });
  } catch (e) {
    if (!controller.signal.aborted) throw e;
  }
  document.body.dataset.phase = "stopped";
  say(`stopped after ${sentFirst} parts; continuing`);

  // Another file of the same size is refused before any PUT.
  round = "other";
  let otherFile = "";
  try {
    await uploadBlob(clients, new File([randomFile(size)], "engine.bin"), {
      hasher,
      resumeUploadId: uploadId,
      fetch: counting,
    });
  } catch (e) {
    otherFile = e instanceof Error ? e.name : String(e);
  }

  round = "second";
  let missingAtResume = -1;
  let resumed = false;
  const uploaded = await uploadBlob(clients, file, {
    hasher,
    resumeUploadId: uploadId,
    concurrency: 2,
    fetch: counting,
    onEvent: (e) => {
      if (e.kind === "started") {
        missingAtResume = e.missing.length;
        resumed = e.resumed;
        sent = partCount - e.missing.length;
        progress();
      }
      if (e.kind === "part-sent") {
        sent += 1;
        progress();
        say(`part ${e.part} stored (${sent} of ${partCount})`);
      }
    },
  });
  document.body.dataset.phase = "processing";

  const states: string[] = [];
  let last = uploaded;
  for await (const update of watchUpload(clients, uploadId)) {
    last = update.upload ?? last;
    const state = UploadState[last.state];
    if (states.at(-1) !== state) states.push(state);
    say(`the upload is ${state.toLowerCase()}`);
    $("stages").replaceChildren(
      ...update.stages.flatMap((s) => {
        const term = document.createElement("dt");
        term.textContent = Stage[s.stage].toLowerCase();
        const what = document.createElement("dd");
        what.textContent = StageStatus[s.status].toLowerCase();
        return [term, what];
      }),
    );
  }

  const submitted = await submitItem(clients, {
    idempotencyKey: `engine-${uploadId}`,
    title: "Engine",
    description: "sent by the package's engine in a browser",
    kind: ItemKind.DIGITAL_FILE,
    files: [{ uploadId, fileId: "" }],
  });
  let itemState = 0;
  let itemVersionMd5: string | undefined;
  for await (const item of watchItem(clients, submitted.item!.itemId)) {
    itemState = item.state;
    itemVersionMd5 = item.files[0]?.current?.md5Hex;
  }

  let refusal: Record<string, unknown> = {};
  try {
    await clients.uploads.getUpload({ uploadId: "not-an-id" });
  } catch (e) {
    const error = UploadError.from(e);
    refusal = { code: error.codeName, reason: error.reason, fields: error.fieldViolations.map((v) => v.field) };
  }
  hasher.close();
  document.body.dataset.phase = "done";
  say(`stored as version 1 of item ${submitted.item!.itemId}`);
  return {
    userAgent: navigator.userAgent,
    partCount,
    sentFirst,
    putsFirst: puts.first,
    putsSecond: puts.second,
    putsOther: puts.other,
    otherFile,
    missingAtResume,
    resumed,
    completedState: UploadState[uploaded.state],
    states,
    finalState: UploadState[last.state],
    md5: digest,
    serverMd5: last.metadata?.md5Hex,
    itemState,
    itemVersionMd5,
    refusal,
  };
};
