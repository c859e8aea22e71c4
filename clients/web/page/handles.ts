// File handles kept across a closed tab (the File System Access API, where the
// browser has it): a file chosen with the picker is remembered in IndexedDB under
// its upload key, so the page can continue its upload later by reading the file
// itself, without asking for it again. Firefox has no picker: there a seller
// chooses the same file again, and the stored parts are checked against it.

const DB = "upload-handles";
const STORE = "handles";

interface ReadPermission {
  queryPermission?(d: { mode: "read" }): Promise<PermissionState>;
  requestPermission?(d: { mode: "read" }): Promise<PermissionState>;
}

/** Whether this browser hands the page file handles from a picker. */
export const supported = (): boolean => typeof (window as { showOpenFilePicker?: unknown }).showOpenFilePicker === "function";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function request<T>(mode: IDBTransactionMode, use: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const r = use(db.transaction(STORE, mode).objectStore(STORE));
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  } finally {
    db.close();
  }
}

/** Remembers `handle` for the upload kept under `key`. */
export const keep = (key: string, handle: FileSystemFileHandle) => request("readwrite", (s) => s.put(handle, key));
/** Forgets the handle of `key` (the upload ended or was aborted). */
export const forget = (key: string) => request("readwrite", (s) => s.delete(key));

/** Every kept handle, by upload key. */
export async function kept(): Promise<Map<string, FileSystemFileHandle>> {
  const keys = await request("readonly", (s) => s.getAllKeys());
  const handles = await request("readonly", (s) => s.getAll());
  return new Map(keys.map((key, i) => [String(key), handles[i] as FileSystemFileHandle]));
}

/** The file behind `handle`, asking for permission to read it again if needed. */
export async function fileOf(handle: FileSystemFileHandle): Promise<File> {
  const h = handle as FileSystemFileHandle & ReadPermission;
  const mode = { mode: "read" } as const;
  if (h.queryPermission && (await h.queryPermission(mode)) !== "granted" && (await h.requestPermission?.(mode)) !== "granted") {
    throw new Error(`reading ${handle.name} again was not allowed`);
  }
  return handle.getFile();
}
