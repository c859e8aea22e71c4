// What every call carries: the caller's token (read from a function, so a renewed
// token is used from the next call on; never from the page's URL or storage), and
// the retry policy.

import type { Interceptor } from "@connectrpc/connect";
import { type RetryOptions, retryInterceptor } from "./retry.js";

/** A bearer token, or a function that returns the current one. */
export type TokenSource = string | (() => string | Promise<string>);

/** Whom a service acts for (services only; sellers' and buyers' tokens may not send it). */
export interface ActingFor {
  subject: string;
  role?: "seller" | "buyer";
  group?: "standard" | "premium";
}

/** Settings every transport shares. */
export interface CallOptions {
  /** The caller's token. */
  token: TokenSource;
  /** For a service: whom it acts for. */
  actingFor?: ActingFor;
  /** How unary calls are tried again; `false` for never. */
  retry?: RetryOptions | false;
}

/** The interceptors for `options`: authentication first, then retries around the call. */
export function interceptors(options: CallOptions): Interceptor[] {
  const auth: Interceptor = (next) => async (req) => {
    const token = typeof options.token === "function" ? await options.token() : options.token;
    req.header.set("authorization", `Bearer ${token}`);
    if (options.actingFor !== undefined) {
      req.header.set("x-upload-act-for", options.actingFor.subject);
      if (options.actingFor.role !== undefined) {
        req.header.set("x-upload-act-for-role", options.actingFor.role);
      }
      if (options.actingFor.group !== undefined) {
        req.header.set("x-upload-act-for-group", options.actingFor.group);
      }
    }
    return next(req);
  };
  return options.retry === false ? [auth] : [retryInterceptor(options.retry), auth];
}
