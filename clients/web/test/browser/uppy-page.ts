// The Uppy test page's script (bundled by scripts/bundle.mjs): the real
// @uppy/core, @uppy/dashboard and @uppy/golden-retriever with the package's
// uploader. The driver (test/uppy.mjs) calls `startUppy` on each load with the
// API and the token (never from the page's URL or storage), adds a file, reloads
// in the middle and confirms the restore; the page counts its PUTs since it
// loaded and hands ready uploads to `submitReady`, as an app would.

import Uppy, { debugLogger } from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import GoldenRetriever from "@uppy/golden-retriever";
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";
import {
  ItemKind,
  SubmissionState,
  WorkerHasher,
  createBrowserTransport,
  createUploadClients,
  submitItem,
  watchItem,
  type Upload,
  type UploadServiceClients,
} from "../../src/index.js";
import { hex, md5 } from "../../src/md5.js";
import UploadService from "../../src/uppy.js";

interface Page {
  uppy: Uppy;
  clients: UploadServiceClients;
  puts: number;
  bytesAtStart: number | undefined;
  stages: string[];
  errors: string[];
  ready: { fileId: string; upload: Upload }[];
}

declare global {
  interface Window {
    page: Page;
    holdPutsAfter: number | undefined;
    startUppy(run: { api: string; token: string }): void;
    addRandomFile(size: number): string;
    submitReady(): Promise<{ state: string; md5: string | undefined }>;
  }
}

// PUTs since this page loaded (the engine's PUTs go through the global fetch).
// With `holdPutsAfter` set, PUTs past that many are held until the page goes, as
// on a connection that stalls: the reload then comes while they wait.
const realFetch = window.fetch.bind(window);
window.fetch = async (input, init) => {
  if (init?.method === "PUT") {
    window.page.puts += 1;
    if (window.holdPutsAfter !== undefined && window.page.puts > window.holdPutsAfter) {
      await new Promise(() => {});
    }
  }
  return realFetch(input, init);
};

window.startUppy = ({ api, token }) => {
  const clients = createUploadClients(createBrowserTransport({ baseUrl: api, token }));
  const page: Page = { uppy: undefined as unknown as Uppy, clients, puts: 0, bytesAtStart: undefined, stages: [], errors: [], ready: [] };
  window.page = page;
  const uppy = new Uppy({ id: "seller-uppy", autoProceed: false, logger: debugLogger })
    .use(Dashboard, { inline: true, target: "#dashboard", height: 380, proudlyDisplayPoweredByUppy: false })
    // Files up to 64 MiB are kept in IndexedDB for a restore.
    .use(GoldenRetriever, { indexedDB: { maxFileSize: 64 << 20 } } as never)
    .use(UploadService, {
      clients,
      hasher: new WorkerHasher(new URL("./hash-worker.js", import.meta.url)),
      concurrency: 2,
      onReady: (fileId, upload) => {
        page.ready.push({ fileId, upload });
        document.getElementById("status")!.textContent = `${upload.fileName} is ready`;
      },
    });
  uppy.on("upload-progress", (_file, progress) => {
    page.bytesAtStart ??= progress.bytesUploaded;
  });
  uppy.on("postprocess-progress", (_file, progress) => {
    if (progress.message && page.stages.at(-1) !== progress.message) page.stages.push(progress.message);
  });
  uppy.on("upload-error", (_file, error) => page.errors.push(error.message));
  page.uppy = uppy as unknown as Uppy;
};

window.addRandomFile = (size) => {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  window.page.uppy.addFile({ name: "uppy.bin", type: "application/octet-stream", data: new Blob([bytes]) });
  return hex(md5(bytes));
};

window.submitReady = async () => {
  const { clients, ready } = window.page;
  const { upload } = ready[0];
  const submitted = await submitItem(clients, {
    idempotencyKey: `uppy-${upload.uploadId}`,
    title: "From Uppy",
    description: "uploaded with the Dashboard",
    kind: ItemKind.DIGITAL_FILE,
    files: [{ uploadId: upload.uploadId, fileId: "" }],
  });
  let state = SubmissionState.UNSPECIFIED;
  let md5Hex: string | undefined;
  for await (const item of watchItem(clients, submitted.item!.itemId)) {
    state = item.state;
    md5Hex = item.files[0]?.current?.md5Hex;
  }
  return { state: SubmissionState[state], md5: md5Hex };
};
