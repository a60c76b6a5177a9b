import { type MachineProfile, type ProfileKey, parseProfile } from "../profile/machine-profile.ts";

/*
 * The page's machine profiles, kept in this browser's IndexedDB under their key, as the terminal
 * keeps them in ~/.cache: measured once per setting, then every later visit predicts at once.
 * A browser that refuses storage (private mode, a full disk) only loses the cache.
 */

const DB = "gpt2-cycles";
const STORE = "profiles";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * The request's result once its transaction has committed: a put's success comes before the
 * commit, and a page opened meanwhile (the next visit) would not see it yet.
 */
function transact<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return open().then((db) => new Promise<T>((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const request = work(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(request.result);
    transaction.onerror = () => reject(transaction.error ?? request.error);
    transaction.onabort = () => reject(transaction.error ?? new Error("the IndexedDB transaction was aborted"));
  }).finally(() => db.close()));
}

/** Where a key's profile is kept: one measured on the tests' tiny ladder apart from the real one. */
const storeKey = (key: ProfileKey, tinyLadder: boolean): string => `${JSON.stringify(key)}${tinyLadder ? " (tiny ladder)" : ""}`;

/** The stored profile for exactly this key, or null (none, unreadable, or an older format). */
export async function storedProfile(key: ProfileKey, tinyLadder: boolean): Promise<MachineProfile | null> {
  try {
    const text = await transact<string | undefined>("readonly", (s) => s.get(storeKey(key, tinyLadder)));
    if (typeof text !== "string") return null;
    const profile = parseProfile(text, "IndexedDB");
    return JSON.stringify(profile.key) === JSON.stringify(key) ? profile : null;
  } catch {
    return null;
  }
}

export async function storeProfile(profile: MachineProfile, tinyLadder: boolean): Promise<void> {
  try {
    await transact("readwrite", (s) => s.put(JSON.stringify(profile), storeKey(profile.key, tinyLadder)));
  } catch {
    // no storage here: the profile serves this page only
  }
}
