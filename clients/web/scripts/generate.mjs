// Generates src/gen from the service's protos (`proto/`) and from the
// google.rpc definitions its error details are encoded with (the ones the
// server's tonic-types crate carries, found through `cargo metadata`), with buf
// and the local protoc-gen-es plugin. Nothing is fetched.

import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(pkg, "..", "..");
const buf = join(pkg, "node_modules", ".bin", "buf");
const plugin = join(pkg, "node_modules", ".bin", "protoc-gen-es");

function template(out) {
  return JSON.stringify({
    version: "v2",
    plugins: [{ local: plugin, out, opt: ["target=ts", "import_extension=js"] }],
  });
}

function tonicTypesProtos() {
  const host = /^host: (.+)$/m.exec(execFileSync("rustc", ["-vV"], { encoding: "utf8" }))[1];
  const args = ["metadata", "--format-version", "1", "--filter-platform", host];
  const metadata = JSON.parse(
    execFileSync("cargo", [...args, "--manifest-path", join(repo, "Cargo.toml")], {
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  const crate = metadata.packages.find((p) => p.name === "tonic-types");
  if (crate === undefined) {
    throw new Error("tonic-types is not in the workspace's dependencies");
  }
  return join(dirname(crate.manifest_path), "proto");
}

const gen = join(pkg, "src", "gen");
rmSync(gen, { recursive: true, force: true });
execFileSync(buf, ["generate", join(repo, "proto"), "--template", template(gen)], { stdio: "inherit" });
execFileSync(buf, ["generate", tonicTypesProtos(), "--template", template(join(gen, "google", "rpc"))], {
  stdio: "inherit",
});
