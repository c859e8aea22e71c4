// A browser's PartHasher: a small pool of Web Workers (the `hash-worker` script,
// bundled as dist/browser/hash-worker.js), so the page's main thread never reads or
// hashes a byte. Parts are hashed in the order asked, as many at once as there
// are workers.

import type { PartHasher } from "./parts.js";

interface Task {
  id: number;
  blob: Blob;
  offset: number;
  length: number;
  resolve: (digest: Uint8Array) => void;
  reject: (error: Error) => void;
}

/** Hashes parts in Web Workers started from `workerUrl`. */
export class WorkerHasher implements PartHasher {
  readonly size: number;
  readonly digest = "md5" as const;
  private idle: Worker[] = [];
  private made = 0;
  private waiting: Task[] = [];
  private calls = new Map<number, { task: Task; worker: Worker }>();
  private nextId = 1;

  /** `size` workers, made when first needed; by default one per core, 2 to 4. */
  constructor(
    private readonly workerUrl: URL | string,
    size = Math.max(2, Math.min(4, globalThis.navigator?.hardwareConcurrency || 2)),
  ) {
    this.size = size;
  }

  hash(blob: Blob, offset: number, length: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, blob, offset, length, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops every worker; hashes still asked for are refused. */
  close(): void {
    for (const task of this.waiting) task.reject(new Error("hashing stopped"));
    this.waiting = [];
    for (const { worker, task } of this.calls.values()) {
      worker.terminate();
      task.reject(new Error("hashing stopped"));
    }
    for (const worker of this.idle) worker.terminate();
    this.idle = [];
    this.calls.clear();
    this.made = 0;
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const worker = this.idle.pop() ?? (this.made < this.size ? this.spawn() : undefined);
      if (worker === undefined) return;
      const task = this.waiting.shift()!;
      this.calls.set(task.id, { task, worker });
      worker.postMessage({ id: task.id, blob: task.blob, offset: task.offset, length: task.length });
    }
  }

  private spawn(): Worker {
    this.made += 1;
    const worker = new Worker(this.workerUrl, { type: "module" });
    worker.onmessage = ({ data }: MessageEvent<{ id: number; digest?: Uint8Array; error?: string }>) => {
      const call = this.calls.get(data.id);
      this.calls.delete(data.id);
      this.idle.push(worker);
      if (call !== undefined) {
        if (data.digest !== undefined) call.task.resolve(data.digest);
        else call.task.reject(new Error(`the part at ${call.task.offset} could not be read: ${data.error}`));
      }
      this.dispatch();
    };
    worker.onerror = (e) => {
      for (const [id, call] of this.calls) {
        if (call.worker === worker) {
          this.calls.delete(id);
          call.task.reject(new Error(`the hashing worker failed: ${e.message}`));
        }
      }
      this.made -= 1;
      worker.terminate();
      this.dispatch();
    };
    return worker;
  }
}
