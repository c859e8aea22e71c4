// Where the page's API and token come from: the origin that served the page, never
// its URL. `config.json` beside the page may name the API's origin (default: the
// page's own, for a gateway that serves both) and the part digest; the token is fetched from the
// origin's `session` endpoint with the seller's cookie, kept in memory only and
// fetched again shortly before it runs out.

/** What the serving origin says: where the API is, and how parts are pinned. */
export interface PageConfig {
  /** The API's origin (default: the page's own). */
  api: string;
  /** `md5` where the deployment's store does not verify SHA-256 part checksums;
   * default `sha256` (where the page has Web Crypto). */
  partDigest: "md5" | "sha256";
}

/** A token as the session endpoint hands it out. */
interface SessionToken {
  token: string;
  /** When it runs out (ms since the epoch); absent: it is fetched again after a minute. */
  expiresAtMs?: number;
}

/** The seller is not signed in at the serving origin. */
export class SignedOutError extends Error {
  override readonly name = "SignedOutError";
}

/** The page's configuration from `config.json` beside it (none: the defaults). */
export async function pageConfig(): Promise<PageConfig> {
  const res = await fetch(new URL("config.json", location.href), { credentials: "same-origin" });
  const given = (res.ok ? await res.json() : {}) as Partial<PageConfig>;
  return {
    api: given.api ? new URL(given.api).origin : location.origin,
    partDigest: given.partDigest === "md5" ? "md5" : "sha256",
  };
}

/** A token source for the transport: the session's token, fetched when needed. */
export function sessionToken(): () => Promise<string> {
  let held: { token: string; renewAtMs: number } | undefined;
  let pending: Promise<string> | undefined;
  const fetchToken = async () => {
    const res = await fetch(new URL("session", location.href), { credentials: "same-origin", cache: "no-store" });
    if (res.status === 401 || res.status === 403) throw new SignedOutError("you are not signed in: sign in again, then reload this page");
    if (!res.ok) throw new Error(`the session could not be read (${res.status})`);
    const session = (await res.json()) as SessionToken;
    const until = session.expiresAtMs ?? Date.now() + 60_000;
    held = { token: session.token, renewAtMs: until - Math.min(30_000, (until - Date.now()) / 4) };
    return session.token;
  };
  return () => {
    if (held !== undefined && Date.now() < held.renewAtMs) return Promise.resolve(held.token);
    pending ??= fetchToken().finally(() => {
      pending = undefined;
    });
    return pending;
  };
}
