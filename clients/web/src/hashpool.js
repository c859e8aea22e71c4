// A small pool of hashing Web Workers (src/hasher.js): parts are hashed in the order
// they were asked for, as many at once as there are workers, off the main thread.

export class HashPool {
  /** `size` workers, made when first needed; by default one per core, 2 to 4. */
  constructor(size = Math.max(2, Math.min(4, navigator.hardwareConcurrency || 2))) {
    this.size = size;
    this.idle = [];
    this.made = 0;
    this.waiting = [];
    this.calls = new Map();
    this.nextId = 1;
  }

  /** The MD5 (16 bytes) of `length` bytes of `file` (a Blob) from `offset`. */
  hash(file, offset, length) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, file, offset, length, resolve, reject });
      this.dispatch();
    });
  }

  dispatch() {
    while (this.waiting.length) {
      let worker = this.idle.pop();
      if (!worker && this.made < this.size) worker = this.spawn();
      if (!worker) return;
      const task = this.waiting.shift();
      this.calls.set(task.id, { task, worker });
      worker.postMessage({ id: task.id, file: task.file, offset: task.offset, length: task.length });
    }
  }

  spawn() {
    this.made += 1;
    const worker = new Worker(new URL('./hasher.js', import.meta.url), { type: 'module' });
    worker.onmessage = ({ data }) => {
      const call = this.calls.get(data.id);
      this.calls.delete(data.id);
      this.idle.push(worker);
      if (call) {
        if (data.error) call.task.reject(new Error(`part at ${call.task.offset} could not be read: ${data.error}`));
        else call.task.resolve(data.digest);
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

  /** Stops every worker; hashes still asked for are refused. */
  close() {
    for (const task of this.waiting) task.reject(new Error('hashing stopped'));
    this.waiting = [];
    for (const { worker } of this.calls.values()) worker.terminate();
    for (const worker of this.idle) worker.terminate();
    this.idle = [];
    this.calls.clear();
    this.made = 0;
  }
}
