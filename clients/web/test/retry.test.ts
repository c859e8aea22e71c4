// When a call is tried again: the pure rule, then the interceptor around a real
// Connect client (an in-memory router stands in for the server; its errors are
// encoded and read back as on the wire).

import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { GetUploadResponseSchema, UploadService } from "../src/gen/upload/v1/upload_pb.js";
import { UploadError } from "../src/errors.js";
import { retryDelay } from "../src/retry.js";
import { interceptors } from "../src/transport.js";

const limits = { attempts: 4, baseDelayMs: 100, maxDelayMs: 2000 };
const failure = (code: Code, retryDelayMs?: number) => new UploadError("x", code, { retryDelayMs });

test("the wait follows RetryInfo, doubles on UNAVAILABLE, and stops where a retry cannot help", () => {
  const cases: [string, UploadError, number, number, number | undefined][] = [
    ["exhausted, told when", failure(Code.ResourceExhausted, 1500), 1, 0.5, 1500],
    ["exhausted, told too long", failure(Code.ResourceExhausted, 60_000), 1, 0.5, 2000],
    ["exhausted, not told when", failure(Code.ResourceExhausted), 1, 0.5, undefined],
    ["unavailable, first", failure(Code.Unavailable), 1, 0, 50],
    ["unavailable, first, top of jitter", failure(Code.Unavailable), 1, 0.999, 99.95],
    ["unavailable, third", failure(Code.Unavailable), 3, 0, 200],
    ["unavailable, capped", failure(Code.Unavailable), 3, 0, 200],
    ["unavailable, told to wait", failure(Code.Unavailable, 1000), 1, 0, 1000],
    ["attempts used up", failure(Code.Unavailable), 4, 0, undefined],
    ["invalid argument", failure(Code.InvalidArgument), 1, 0, undefined],
    ["permission denied", failure(Code.PermissionDenied), 1, 0, undefined],
  ];
  for (const [name, error, attempt, random, expected] of cases) {
    assert.equal(retryDelay(error, attempt, limits, random), expected, name);
  }
});

/** A server whose GetUpload fails with `failures` first, then answers. */
function flakyServer(failures: ConnectError[]) {
  const seen: { authorization: string | null; actFor: string | null }[] = [];
  const transport = (tokens: string[], retry = true) =>
    createRouterTransport(
      ({ service }) => {
        service(UploadService, {
          getUpload(_req, ctx) {
            seen.push({
              authorization: ctx.requestHeader.get("authorization"),
              actFor: ctx.requestHeader.get("x-upload-act-for"),
            });
            const next = failures.shift();
            if (next !== undefined) {
              throw next;
            }
            return create(GetUploadResponseSchema, {});
          },
        });
      },
      {
        transport: {
          interceptors: interceptors({
            token: () => tokens.shift() ?? "last",
            actingFor: { subject: "seller-1", role: "seller" },
            retry: retry ? { sleep: async (ms) => void waits.push(ms), random: () => 0 } : false,
          }),
        },
      },
    );
  const waits: number[] = [];
  return { transport, seen, waits };
}

const slowDown = (ms: number) =>
  new ConnectError("slow down", Code.ResourceExhausted, undefined, [
    { desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 } } },
  ]);

test("RESOURCE_EXHAUSTED waits as RetryInfo says, UNAVAILABLE backs off, and each try reads the token anew", async () => {
  const server = flakyServer([slowDown(1500), new ConnectError("down", Code.Unavailable)]);
  const client = createClient(UploadService, server.transport(["t1", "t2", "t3"]));
  await client.getUpload({ uploadId: "u" });
  assert.deepEqual(server.waits, [1500, 250]);
  assert.deepEqual(
    server.seen.map((s) => s.authorization),
    ["Bearer t1", "Bearer t2", "Bearer t3"],
  );
  assert.ok(server.seen.every((s) => s.actFor === "seller-1"));
});

test("a refusal that no wait can mend is thrown at once as an UploadError", async () => {
  const server = flakyServer([new ConnectError("no such upload", Code.NotFound)]);
  const client = createClient(UploadService, server.transport(["t1"]));
  await assert.rejects(client.getUpload({ uploadId: "u" }), (e: unknown) => {
    assert.ok(e instanceof UploadError);
    assert.equal(e.code, Code.NotFound);
    return true;
  });
  assert.equal(server.seen.length, 1);
  assert.deepEqual(server.waits, []);
});

test("with retries off, the first failure is the caller's", async () => {
  const server = flakyServer([new ConnectError("down", Code.Unavailable)]);
  const client = createClient(UploadService, server.transport(["t1"], false));
  await assert.rejects(client.getUpload({ uploadId: "u" }), ConnectError);
  assert.equal(server.seen.length, 1);
});
