// The engine's flow that the Node script (node-upload.mjs) and the browser page
// (browser/engine-page.ts) both run, each with its own hasher and random bytes:
// a file sent until `stopAfter` parts are stored and stopped, another file of
// the same size refused before any PUT, the first continued with only the missing
// parts, watched to ready, submitted and watched to stored, and a refusal read.
// Answers what happened, for the Rust test (tests/tests/stack/web_client.rs).

import {
  ItemKind,
  type PartHasher,
  UploadError,
  UploadState,
  type UploadServiceClients,
  type WatchProgressResponse,
  submitItem,
  uploadBlob,
  watchItem,
  watchUpload,
} from "../src/index.js";

/** What the flow needs from where it runs. */
export interface Flow {
  clients: UploadServiceClients;
  hasher: PartHasher;
  /** `size` random bytes. */
  randomBytes(size: number): Uint8Array<ArrayBuffer>;
  /** Their MD5, in hex. */
  md5Hex(bytes: Uint8Array<ArrayBuffer>): string;
  size: number;
  stopAfter: number;
  /** Told of each part stored (stored so far, of how many) and each snapshot watched. */
  onPart?(stored: number, of: number): void;
  onPhase?(phase: "uploading" | "stopped" | "processing" | "done"): void;
  onUpdate?(update: WatchProgressResponse): void;
}

export async function stopRefuseResume(flow: Flow): Promise<Record<string, unknown>> {
  const { clients, hasher, size } = flow;
  const bytes = flow.randomBytes(size);
  const file = new Blob([bytes], { type: "application/octet-stream" });
  const puts = { first: 0, other: 0, second: 0 };
  let round: keyof typeof puts = "first";
  const counting: typeof fetch = (input, init) => {
    puts[round] += 1;
    return fetch(input, init);
  };
  let partCount = 1;
  let stored = 0;

  flow.onPhase?.("uploading");
  const controller = new AbortController();
  let uploadId = "";
  let sentFirst = 0;
  try {
    await uploadBlob(clients, file, {
      fileName: "engine.bin",
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
          flow.onPart?.(++stored, partCount);
          if (++sentFirst >= flow.stopAfter) controller.abort(new Error("stopped on purpose"));
        }
      },
    });
    throw new Error("the first round was not stopped");
  } catch (e) {
    if (!controller.signal.aborted) throw e;
  }
  flow.onPhase?.("stopped");

  // Another file of the same size is refused before any PUT.
  round = "other";
  let otherFile = "";
  try {
    await uploadBlob(clients, new Blob([flow.randomBytes(size)]), {
      fileName: "engine.bin",
      hasher,
      resumeUploadId: uploadId,
      fetch: counting,
    });
  } catch (e) {
    otherFile = e instanceof Error ? e.name : String(e);
  }

  // The same file, continued.
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
        stored = partCount - e.missing.length;
      }
      if (e.kind === "part-sent") flow.onPart?.(++stored, partCount);
    },
  });
  flow.onPhase?.("processing");

  const states: string[] = [];
  let last = uploaded;
  for await (const update of watchUpload(clients, uploadId)) {
    last = update.upload ?? last;
    if (states.at(-1) !== UploadState[last.state]) states.push(UploadState[last.state]);
    flow.onUpdate?.(update);
  }

  const submitted = await submitItem(clients, {
    idempotencyKey: `engine-${uploadId}`,
    title: "Engine",
    description: "sent by the package's engine",
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
  flow.onPhase?.("done");
  return {
    partCount,
    sentFirst,
    putsFirst: puts.first,
    putsOther: puts.other,
    putsSecond: puts.second,
    otherFile,
    missingAtResume,
    resumed,
    completedState: UploadState[uploaded.state],
    states,
    finalState: UploadState[last.state],
    md5: flow.md5Hex(bytes),
    serverMd5: last.metadata?.md5Hex,
    itemId: submitted.item!.itemId,
    itemState,
    itemVersionMd5,
    refusal,
  };
}
