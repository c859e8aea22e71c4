// File handles kept across a closed tab (File System Access API, where the browser
// has it): a file chosen with the picker is remembered in IndexedDB under its upload
// key, so the page can continue the upload later by reading the file itself, without
// asking for it again.

const DB = 'upload-handles';
const STORE = 'handles';

/** Whether this browser can hand the page file handles (Chromium can; others ask again). */
export const supported = () => typeof window.showOpenFilePicker === 'function';

function db() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function request(mode, use) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const r = use(d.transaction(STORE, mode).objectStore(STORE));
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  }).finally(() => d.close());
}

/** Remembers `handle` for the upload kept under `key`. */
export const keep = (key, handle) => request('readwrite', (s) => s.put(handle, key));
/** Forgets the handle of `key` (the upload ended or was aborted). */
export const forget = (key) => request('readwrite', (s) => s.delete(key));

/** Every kept handle: [{ key, handle }]. */
export async function kept() {
  const keys = await request('readonly', (s) => s.getAllKeys());
  const handles = await request('readonly', (s) => s.getAll());
  return keys.map((key, i) => ({ key, handle: handles[i] }));
}

/** The file behind `handle`, asking for permission to read it again if needed. */
export async function fileOf(handle) {
  const mode = { mode: 'read' };
  if (handle.queryPermission && (await handle.queryPermission(mode)) !== 'granted'
    && (await handle.requestPermission(mode)) !== 'granted') {
    throw new Error(`reading ${handle.name} again was not allowed`);
  }
  return handle.getFile();
}
