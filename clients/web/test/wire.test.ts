// The generated code reads every response the Rust server encodes, field for
// field, and a refusal's details as tonic-types encodes them
// (fixtures/rust-encoded.json, held equal to prost's output by the Rust test
// `the_web_client_s_fixtures_are_what_the_server_encodes`).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { file_error_details } from "../src/gen/google/rpc/error_details_pb.js";
import { file_status } from "../src/gen/google/rpc/status_pb.js";
import { GetItemResponseSchema, file_upload_v1_item } from "../src/gen/upload/v1/item_pb.js";
import {
  ListUploadedPartsResponseSchema,
  WatchProgressResponseSchema,
  file_upload_v1_upload,
} from "../src/gen/upload/v1/upload_pb.js";
import { UploadError } from "../src/errors.js";

interface Fixture {
  type: string;
  hex: string;
}

const fixtures: Fixture[] = JSON.parse(
  readFileSync(new URL("../../test/fixtures/rust-encoded.json", import.meta.url), "utf8"),
);
const registry = createRegistry(
  file_upload_v1_upload,
  file_upload_v1_item,
  file_status,
  file_error_details,
);
const bytesOf = (type: string) => Buffer.from(fixtures.find((f) => f.type === type)!.hex, "hex");

/** Paths of every message inside `value` that holds fields its schema does not know. */
function unknownFields(value: unknown, path = "$"): string[] {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) {
    return [];
  }
  const found: string[] = [];
  const record = value as Record<string, unknown>;
  if (Array.isArray(record.$unknown) && record.$unknown.length > 0) {
    found.push(path);
  }
  for (const [key, child] of Object.entries(record)) {
    if (key !== "$unknown" && key !== "$typeName") {
      found.push(...unknownFields(child, `${path}.${key}`));
    }
  }
  return found;
}

test("every message the server encodes is read without an unknown field and written back byte for byte", () => {
  assert.ok(fixtures.length >= 17, `${fixtures.length} fixtures`);
  for (const { type, hex } of fixtures) {
    const schema = registry.getMessage(type);
    assert.ok(schema, `${type} is generated`);
    const bytes = Buffer.from(hex, "hex");
    const message = fromBinary(schema, bytes);
    assert.deepEqual(unknownFields(message), [], `${type} has fields the generated code lacks`);
    assert.deepEqual(Buffer.from(toBinary(schema, message)), bytes, `${type} round trip`);
  }
});

test("64-bit numbers past 2^53 keep every digit", () => {
  const watched = fromBinary(WatchProgressResponseSchema, bytesOf("upload.v1.WatchProgressResponse"));
  assert.equal(watched.upload?.sizeBytes, 9007199254740993n);
  assert.equal(watched.upload?.scan?.signatureVersion, 9223372036854775807n);
  assert.equal(watched.stages[0]?.bytesDone, 9007199254740992n);
  const parts = fromBinary(ListUploadedPartsResponseSchema, bytesOf("upload.v1.ListUploadedPartsResponse"));
  assert.deepEqual(parts.missingPartNumbers, [2, 3, 10000]);
});

test("a stored version's quarantine is read", () => {
  const item = fromBinary(GetItemResponseSchema, bytesOf("upload.v1.GetItemResponse")).item;
  const quarantined = item?.files[0]?.current?.quarantined;
  assert.equal(quarantined?.held, true);
  assert.equal(quarantined?.signature, "Win.Test.Found");
  assert.equal(quarantined?.signatureVersion, -9223372036854775808n);
});

test("a refusal's grpc-status-details-bin gives its reason, fields and wait", () => {
  const details = bytesOf("google.rpc.Status").toString("base64").replace(/=+$/, "");
  const trailer = new Headers({
    "grpc-status": String(Code.ResourceExhausted),
    "grpc-message": "too%20many%20uploads",
    "grpc-status-details-bin": details,
  });
  const error = UploadError.from(findTrailerError(trailer));
  assert.equal(error.code, Code.ResourceExhausted);
  assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
  assert.equal(error.rawMessage, "too many uploads");
  assert.equal(error.reason, "CREATE_RATE_EXCEEDED");
  assert.deepEqual(error.fieldViolations, [{ field: "file_name", description: "names no program" }]);
  assert.equal(error.retryDelayMs, 1500);
});

test("a reason this client does not know reads as none, and is kept as sent", () => {
  const known = new UploadError("x", Code.NotFound, { reason: "UPLOAD_NOT_FOUND" });
  assert.equal(known.reason, "UPLOAD_NOT_FOUND");
  const unknown = new UploadError("x", Code.FailedPrecondition, { reason: "A_CODE_FROM_A_NEWER_SERVER" });
  assert.equal(unknown.reason, undefined);
  assert.equal(unknown.rawReason, "A_CODE_FROM_A_NEWER_SERVER");
});
