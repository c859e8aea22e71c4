// What the page shows of one file: its row in the queue (name, state, an Abort
// button, one progress bar per stage, the outcome in words) and the sentences that
// say how an upload ended.

import { Stage, StageStatus, type Upload, UploadState } from "../src/index.js";

/** The stages a row shows, in the order they run. */
export const STAGES = [Stage.UPLOAD, Stage.SCAN, Stage.HASH, Stage.METADATA, Stage.PREVIEW] as const;

/** Where a file of the queue is: an upload state, or the page's own steps around it. */
export type Phase =
  | "queued"
  | "uploading"
  | "processing"
  | "submitted"
  | "error"
  | "ready"
  | "stored"
  | "quarantined"
  | "rejected"
  | "failed"
  | "aborted"
  | "expired";

/** The lowercase name of an enum value (`Stage.SCAN` → `scan`). */
export const nameOf = (names: Record<number, string>, value: number): string => (names[value] ?? "unknown").toLowerCase();

/** A row of the queue for `file`, appended to `queue`. */
export function rowFor(queue: HTMLElement, file: File): HTMLLIElement {
  const row = document.createElement("li");
  row.className = "file";
  row.dataset.name = file.name;
  const head = document.createElement("div");
  head.className = "head";
  const name = document.createElement("strong");
  name.className = "fname";
  name.textContent = file.name;
  const state = document.createElement("span");
  state.className = "state";
  const abort = document.createElement("button");
  abort.type = "button";
  abort.className = "abort";
  abort.textContent = "Abort";
  abort.setAttribute("aria-label", `Abort ${file.name}`);
  head.append(name, " ", state, " ", abort);
  row.append(head);
  for (const stage of STAGES) {
    const line = document.createElement("div");
    line.className = "stage";
    line.dataset.stage = nameOf(Stage, stage);
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = nameOf(Stage, stage);
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", `${file.name}: ${nameOf(Stage, stage)}`);
    const status = document.createElement("span");
    status.className = "status";
    line.append(label, bar, status);
    row.append(line);
  }
  const reason = document.createElement("p");
  reason.className = "reason";
  row.append(reason);
  queue.append(row);
  return row;
}

/** Shows `stage`'s progress and status (a word, or a short sentence) on `row`. */
export function showStage(row: HTMLElement, stage: string, done: number, total: number, status: string): void {
  const line = row.querySelector<HTMLElement>(`[data-stage="${stage}"]`);
  if (line === null) return;
  const bar = line.querySelector("progress")!;
  bar.max = Math.max(total, 1);
  bar.value = done;
  line.querySelector(".status")!.textContent = status;
  line.dataset.status = status;
}

/** A stage status's word (`StageStatus.DONE` → `done`). */
export const statusWord = (status: StageStatus): string => nameOf(StageStatus, status);

/** How an upload in a settled state ended, in words a seller reads. */
export function outcome(u: Upload): string {
  const why = u.failure?.message.replace(/\.$/, "");
  switch (u.state) {
    case UploadState.READY:
      return u.metadata
        ? `Ready: ${u.metadata.sizeBytes} bytes, ${u.metadata.sniffedContentType}, MD5 ${u.metadata.md5Hex}.`
        : "Ready.";
    case UploadState.STORED:
      return "Stored in the item.";
    case UploadState.QUARANTINED:
      return `Quarantined: ${why || "the malware scan found a threat; the file was set aside and will not be published"}.`;
    case UploadState.REJECTED:
      return `Rejected: ${why || "this file is not allowed here"}.`;
    case UploadState.EXPIRED:
      return "Expired: the upload was not finished in time. Upload the file again.";
    case UploadState.FAILED:
      return `Failed: ${why || "processing gave up after its retries"}.`;
    case UploadState.ABORTED:
      return "Aborted: you stopped this upload and its parts were removed from the store.";
    default:
      return "";
  }
}

/** The page's phase for a settled upload state. */
export function phaseOf(state: UploadState): Phase {
  return nameOf(UploadState, state) as Phase;
}
