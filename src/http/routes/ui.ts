/**
 * Generative UI (the `ui` key of langgraph.json): the bundles built at start
 * (src/ui.ts), served the way the official server serves them, for the
 * SDK's `LoadExternalComponent`:
 *
 * - `POST /ui/{agent}` with `{"name": component}` answers an HTML snippet:
 *   a stylesheet link per CSS file and the script tag of the bundle, whose
 *   onload renders the component into the shadow root the client names by
 *   replacing `{{shadowRootId}}`;
 * - `GET /ui/{agent}/{file}` answers one file of the bundle.
 *
 * URLs in the snippet are absolute on the request's Host: `http:` for
 * localhost and 127.0.0.1, protocol-relative (`//host/...`) otherwise, so
 * a page served over HTTPS loads them over HTTPS.
 *
 * Errors are JSON `{"detail"}` like the rest of the API (the dev server
 * answers plain text, and 400 for a body without `name`: here 422).
 */
import { extname } from "node:path";
import { Hono } from "hono";
import { getMimeType } from "hono/utils/mime";
import { z } from "zod";
import { notFound } from "../../core/errors.ts";
import { body } from "../validate.ts";

/** One file of a bundle. */
export interface UiFile {
  basename: string;
  contents: Uint8Array;
}
/** Each agent's bundle (the `ui` key's names). */
export type UiBundles = ReadonlyMap<string, readonly UiFile[]>;

const ComponentRequest = z.object({ name: z.string() });

/** `localhost` or `127.0.0.1`, with or without a port. */
const isLocal = (host: string) => ["localhost", "127.0.0.1"].some((name) => host === name || host.startsWith(`${name}:`));

export function uiRoutes(bundles: UiBundles): Hono {
  const app = new Hono();

  app.post("/ui/:agent", async (c) => {
    const agent = c.req.param("agent");
    const { name } = await body(c, ComponentRequest);
    const files = bundles.get(agent);
    if (files === undefined || files.length === 0) throw notFound("UI of agent", agent);
    const host = c.req.header("host") ?? "";
    // This request's own path (with http.mount_prefix when there is one) is the files' folder.
    const base = `${isLocal(host) ? "http:" : ""}//${host}${c.req.path}`;
    const tags = files.filter((f) => extname(f.basename) === ".css").map((f) => `<link rel="stylesheet" href="${base}/${f.basename}" />`);
    const script = files.find((f) => extname(f.basename) === ".js");
    if (script !== undefined) {
      // The bundle's global is named after the agent (see @langchain/langgraph-ui's bundler).
      const global = `__LGUI_${agent.replace(/[^a-zA-Z0-9]/g, "_")}`;
      // Escaped for the single-quoted attribute (a name with ' or & would otherwise break out of it).
      const component = JSON.stringify(name).replaceAll("&", "&amp;").replaceAll("'", "&#39;");
      tags.push(`<script src="${base}/${script.basename}" onload='${global}.render(${component}, "{{shadowRootId}}")'></script>`);
    }
    // text/plain, as the dev server answers (it asks for text/html, but its c.text() keeps text/plain); the SDK reads the text.
    return c.text(tags.join("\n"));
  });

  app.get("/ui/:agent/:file", (c) => {
    const basename = c.req.param("file");
    const file = bundles.get(c.req.param("agent"))?.find((f) => f.basename === basename);
    if (file === undefined) throw notFound("UI file", `${c.req.param("agent")}/${basename}`);
    return c.body(file.contents as Uint8Array<ArrayBuffer>, 200, { "Content-Type": getMimeType(basename) ?? "text/plain" });
  });

  return app;
}
