// An Uppy 6 uploader (`@uppy/core` BasePlugin + addUploader) that sends files
// through the upload service: parts signed with their MD5 and length pinned by
// the server, parallel PUTs straight to the store, upload progress per file, then
// every processing stage as Uppy's postprocess progress until the upload is
// ready (handed to the app, which submits an item) or ends in words
// (quarantined, rejected, expired). With @uppy/golden-retriever, a file restored
// after a reload continues its upload (its id is kept in the file's meta) and
// sends only the parts the store lacks.

import { BasePlugin, type Body, type Meta, type PluginOpts, type Uppy, type UppyFile } from "@uppy/core";
import type { UploadServiceClients } from "./client.js";
import { type Upload, Stage, StageStatus, UploadState } from "./gen/upload/v1/upload_pb.js";
import { uploadBlob, watchUpload } from "./engine.js";
import type { PartHasher } from "./parts.js";

/** The file meta key that holds a file's upload id. */
export const UPLOAD_ID_META = "uploadServiceId";

/** The plugin's options. */
export interface UploadServiceOptions extends PluginOpts {
  /** The service's clients (`createUploadClients(createBrowserTransport(...))`). */
  clients: UploadServiceClients;
  /** Hashes parts: a `WorkerHasher` in a browser. */
  hasher: PartHasher;
  /** Parts in flight per file (default 4). */
  concurrency?: number;
  /** Each upload that reached ready, for the app to submit as an item. */
  onReady?: (fileId: string, upload: Upload) => void;
}

const STAGE_WORDS: Record<number, string> = {
  [Stage.SCAN]: "Scanning for malware",
  [Stage.HASH]: "Reading the file",
  [Stage.METADATA]: "Reading media facts",
  [Stage.PREVIEW]: "Making previews",
};

/** Why an upload that settled short of ready stopped, in words for the seller. */
export function endInWords(upload: Upload): string {
  const why = upload.failure?.message;
  switch (upload.state) {
    case UploadState.QUARANTINED:
      return `Quarantined: malware was found${upload.scan?.signature ? ` (${upload.scan.signature})` : ""}. ${why ?? ""}`.trim();
    case UploadState.REJECTED:
      return `Rejected: ${why ?? "the file was not accepted"}`;
    case UploadState.EXPIRED:
      return "Expired: the upload was not finished in time; add the file again";
    case UploadState.ABORTED:
      return "Aborted";
    default:
      return `Failed: ${why ?? "the processing gave up"}`;
  }
}

/** Uploads an Uppy's files through the upload service. */
export default class UploadService<M extends Meta, B extends Body> extends BasePlugin<UploadServiceOptions, M, B> {
  constructor(uppy: Uppy<M, B>, opts: UploadServiceOptions) {
    super(uppy, opts);
    this.id = opts.id ?? "UploadService";
    this.type = "uploader";
  }

  override install(): void {
    this.uppy.addUploader(this.uploadFiles);
  }

  override uninstall(): void {
    this.uppy.removeUploader(this.uploadFiles);
  }

  private readonly uploadFiles = async (fileIDs: string[]): Promise<void> => {
    await Promise.allSettled(fileIDs.map((id) => this.uploadFile(id)));
  };

  private async uploadFile(id: string): Promise<void> {
    const file: UppyFile<M, B> = this.uppy.getFile(id);
    const blob = file.data;
    if (!(blob instanceof Blob)) {
      // A remote file (Companion's) has no bytes here: this uploader sends local files.
      this.uppy.emit("upload-error", file, { name: "NoLocalFile", message: "only files from this device can be sent" });
      return;
    }
    this.uppy.emit("upload-start", [file]);
    const total = blob.size;
    let done = 0;
    const uploadStarted = Date.now();
    const progress = () =>
      this.uppy.emit("upload-progress", this.uppy.getFile(id), { uploadStarted, bytesUploaded: done, bytesTotal: total });
    try {
      const resumeUploadId = file.meta[UPLOAD_ID_META] as string | undefined;
      const uploaded = await uploadBlob(this.opts.clients, blob, {
        fileName: file.name ?? "",
        contentType: file.type || "application/octet-stream",
        hasher: this.opts.hasher,
        concurrency: this.opts.concurrency,
        resumeUploadId,
        onEvent: (e) => {
          if (e.kind === "started") {
            // Kept in the file's meta, so golden-retriever brings it back after a reload.
            this.uppy.setFileMeta(id, { [UPLOAD_ID_META]: e.upload.uploadId } as unknown as M);
            const size = Number(e.upload.partSizeBytes);
            const missing = new Set(e.missing);
            done = 0;
            for (let n = 1; n <= e.upload.partCount; n++) {
              if (!missing.has(n)) done += Math.min(size, total - (n - 1) * size);
            }
            progress();
          } else if (e.kind === "part-sent") {
            done += e.bytes;
            progress();
          }
        },
      });
      let last = uploaded;
      for await (const update of watchUpload(this.opts.clients, uploaded.uploadId)) {
        last = update.upload ?? last;
        const running = update.stages.find((s) => s.status === StageStatus.RUNNING && s.stage !== Stage.UPLOAD);
        const words = running ? STAGE_WORDS[running.stage] ?? "Processing" : "Processing";
        const ofTotal = running && running.bytesTotal > 0n ? Number(running.bytesDone) / Number(running.bytesTotal) : undefined;
        this.uppy.emit(
          "postprocess-progress",
          this.uppy.getFile(id),
          ofTotal === undefined ? { mode: "indeterminate", message: words } : { mode: "determinate", message: words, value: ofTotal },
        );
      }
      this.uppy.emit("postprocess-complete", this.uppy.getFile(id));
      if (last.state !== UploadState.READY) {
        throw new Error(endInWords(last));
      }
      this.uppy.emit("upload-success", this.uppy.getFile(id), {
        status: 200,
        body: { uploadId: last.uploadId, md5: last.metadata?.md5Hex } as unknown as B,
      });
      this.opts.onReady?.(id, last);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.uppy.emit("upload-error", this.uppy.getFile(id), { name: error.name, message: error.message });
    }
  }
}
