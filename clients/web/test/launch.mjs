// Launches Debian's Chromium (over CDP) or Firefox ESR (over WebDriver BiDi) with
// puppeteer-core, headless, for the package's browser tests. `serverCert`: the
// https:// API's certificate (PEM path), which Chromium trusts by its public key
// alone and Firefox takes as the test's (acceptInsecureCerts).

import { X509Certificate, createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

export function launch(which, serverCert) {
  if (which === "firefox") {
    return puppeteer.launch({
      browser: "firefox",
      executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
      headless: true,
      acceptInsecureCerts: true,
    });
  }
  if (which !== "chromium") throw new Error(`no browser ${which}: chromium or firefox`);
  const args = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ];
  if (serverCert) {
    const cert = new X509Certificate(readFileSync(serverCert));
    const spki = createHash("sha256").update(cert.publicKey.export({ type: "spki", format: "der" })).digest("base64");
    args.push(`--ignore-certificate-errors-spki-list=${spki}`);
  }
  return puppeteer.launch({
    browser: "chrome",
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args,
  });
}
