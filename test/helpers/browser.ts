/** Headless Chromium (Debian's package) and a page served from an origin of its own. */
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "esbuild";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Starts headless Chromium, or fails saying how to install it: the browser tests never skip. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}; the browser tests need it. ` +
        "Install it with `sudo apt-get update && sudo apt-get install -y chromium` (Debian, Ubuntu), " +
        "or set CHROMIUM_PATH to a Chromium or Chrome binary.",
    );
  }
  // No sandbox: CI containers run as root, where Chromium refuses to start with one.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}

export interface PageServer {
  /** The page's URL, on 127.0.0.1 with a port of its own (so an origin of its own). */
  url: string;
  close(): Promise<void>;
}

/** Bundles `entry` (JavaScript, React) for the browser and serves it in a blank HTML page on port 0. */
export async function servePage(entry: string): Promise<PageServer> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const script = bundle.outputFiles[0]!.text;
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>Baton page</title><link rel="icon" href="data:,"></head>' +
    '<body><div id="root"></div><script type="module" src="/page.js"></script></body></html>';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://page").pathname;
    if (path === "/page.js") res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    else if (path === "/") res.writeHead(200, { "content-type": "text/html" }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
