/**
 * A browser on another origin streams runs with `useStream()` against Baton
 * and answers the example agent's approval request the way Agent Chat UI
 * does: content-block messages, then `submit({}, {command: {resume}})`.
 * Headless Debian Chromium through playwright-core; every wait is on DOM
 * state. Needs CORS and `{input: {}, command}` acceptance from the server.
 */
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, servePage, type PageServer } from "../helpers/browser.ts";
import { ROOT } from "../helpers/process.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
let browser: Browser;
let site: PageServer;
beforeAll(async () => {
  browser = await launchChromium();
  t = await startServer({ configPath: join(ROOT, "examples/agent/langgraph.json") });
  site = await servePage(join(import.meta.dirname, "page.js"));
});
afterAll(async () => {
  await browser?.close();
  await site?.close();
  await t?.close();
});

/** Opens the page pointed at Baton; what the page logs is kept for failure messages. */
async function openPage(): Promise<{ page: Page; logs: string[] }> {
  expect(new URL(site.url).origin).not.toBe(new URL(t.url).origin);
  const page = await browser.newPage();
  const logs: string[] = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`${site.url}?api=${encodeURIComponent(t.url)}`);
  return { page, logs };
}

/** Waits until `locator` is in the given state; fails at once, with the page's logs, if the page shows an error. */
async function until(page: Page, logs: string[], locator: Locator, state: "visible" | "detached" = "visible") {
  const error = page.getByTestId("error");
  const shown = await Promise.race([
    locator.waitFor({ state, timeout: 15_000 }).then(() => "ok" as const),
    error.waitFor({ timeout: 15_000 }).then(() => "error" as const),
  ]).catch((e: unknown) => {
    throw new Error(`${String(e)}\npage logs:\n${logs.join("\n")}`);
  });
  if (shown === "error") throw new Error(`the page shows an error: ${await error.textContent()}\npage logs:\n${logs.join("\n")}`);
}

const messages = (page: Page) => page.getByTestId("messages").locator("li");
const idle = (page: Page) => page.locator('[data-testid="status"]', { hasText: /^idle$/ });

async function send(page: Page, logs: string[], text: string) {
  await page.getByLabel("message").fill(text);
  await page.getByRole("button", { name: "Send" }).click();
  // The run streams its state back, the human message first.
  await until(page, logs, page.locator('[data-testid="messages"] li[data-type="human"]').filter({ hasText: text }).last());
}

describe("useStream() on another origin", () => {
  it("streams a run, shows the approval request, and Approve resumes it", async () => {
    const { page, logs } = await openPage();
    await send(page, logs, "what is 6*7");
    await until(page, logs, messages(page).filter({ hasText: /^The answer is 42\.$/ }));
    await until(page, logs, idle(page));
    expect(await messages(page).allTextContents()).toEqual([
      "what is 6*7",
      'calls calculator {"expression":"what is 6*7"}',
      "42",
      "The answer is 42.",
    ]);

    await send(page, logs, "deploy to production");
    await until(page, logs, page.getByTestId("interrupt"));
    await until(page, logs, idle(page));
    expect(await page.getByTestId("description").textContent()).toBe("Deploy to production? This needs a human's approval.");
    expect(await messages(page).last().textContent()).toBe('calls deploy {"target":"production"}');
    const threadId = (await page.getByTestId("thread").textContent())!;
    expect((await t.client.threads.get(threadId)).status).toBe("interrupted");

    await page.getByRole("button", { name: "Approve" }).click();
    await until(page, logs, messages(page).filter({ hasText: /^Deployed to production\.$/ }).nth(1));
    await until(page, logs, page.getByTestId("interrupt"), "detached");
    await until(page, logs, idle(page));
    expect(await messages(page).count()).toBe(8);
    const state = await t.client.threads.getState<{ messages: { type: string; content: unknown }[] }>(threadId);
    expect(state.values.messages.at(-1)).toMatchObject({ type: "ai", content: "Deployed to production." });
    expect((await t.client.threads.get(threadId)).status).toBe("idle");
    await page.close();
  });

  it("Reject resumes with the reason, and nothing is deployed", async () => {
    const { page, logs } = await openPage();
    await send(page, logs, "deploy to staging");
    await until(page, logs, page.getByTestId("interrupt"));
    await page.getByLabel("reason").fill("not on a Friday");
    await page.getByRole("button", { name: "Reject" }).click();
    await until(page, logs, messages(page).filter({ hasText: /^Not deployed: not on a Friday$/ }));
    await until(page, logs, page.getByTestId("interrupt"), "detached");
    await until(page, logs, idle(page));
    expect(await messages(page).allTextContents()).toEqual([
      "deploy to staging",
      'calls deploy {"target":"staging"}',
      "not on a Friday",
      "Not deployed: not on a Friday",
    ]);
    await page.close();
  });
});
