/**
 * Generative UI end to end (issue #10 item 20): a page on another origin
 * runs a graph that answers with a UI message, and the SDK's
 * `LoadExternalComponent` renders the component Baton bundled at start
 * (POST /ui/agent, then the bundle's script and stylesheet) in a shadow
 * root. Headless Debian Chromium through playwright-core; every wait is on
 * DOM state.
 */
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { launchChromium, servePage, type PageServer } from "../helpers/browser.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const UI = join(import.meta.dirname, "../fixtures/ui");

let t: TestServer;
let browser: Browser;
let site: PageServer;
beforeAll(async () => {
  browser = await launchChromium();
  t = await startServer({ configPath: join(UI, "langgraph.json") });
  site = await servePage(join(UI, "page.js"));
});
afterAll(async () => {
  await browser?.close();
  await site?.close();
  await t?.close();
});

it("renders a graph's UI message with LoadExternalComponent, styled by the bundle's CSS", async () => {
  const page = await browser.newPage();
  const logs: string[] = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`${site.url}?api=${encodeURIComponent(t.url)}`);
  // Playwright's locators pierce open shadow roots.
  const card = page.getByTestId("ui").locator(".card");
  await card.waitFor({ timeout: 15_000 }).catch((error: unknown) => {
    throw new Error(`${String(error)}\npage logs:\n${logs.join("\n")}`);
  });
  expect(await card.textContent()).toBe("Weather in Paris");
  // The stylesheet the snippet links applies inside the shadow root.
  expect(await card.evaluate((el) => getComputedStyle(el).paddingTop)).toBe("8px");
  expect(await card.evaluate((el) => el.getRootNode() instanceof ShadowRoot)).toBe(true);
});
