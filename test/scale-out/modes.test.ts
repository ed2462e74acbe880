/**
 * Postgres without Redis is a one-process mode (events stay in that
 * process's memory): it works, and a second process on the same database,
 * with or without Redis, is refused with a message that says why.
 */
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAll, runBaton } from "../helpers/process.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { FIXTURES, human, REDIS_URL } from "../helpers/server.ts";

let database: TestDatabase;
beforeAll(async () => {
  database = await freshDatabase("modes");
});
afterAll(async () => {
  killAll();
  await database.drop();
});

describe("Postgres without Redis", () => {
  it("serves from one process, and refuses a second one on the same database", async () => {
    const alone = runBaton(["serve", "--config", FIXTURES, "--port", "0"], { env: { DATABASE_URL: database.url } });
    const client = new Client({ apiUrl: await alone.url });
    const out = (await client.runs.wait(null, "echo", { input: human("on postgres") })) as { messages: { content: string }[] };
    expect(out.messages.map((m) => m.content)).toEqual(["on postgres", "echo: on postgres"]);

    const second = runBaton(["serve", "--config", FIXTURES, "--port", "0"], { env: { DATABASE_URL: database.url } });
    expect(await second.exited).toBe(1);
    expect(second.output().stderr).toMatch(/Another Baton process uses this database\. Without REDIS_URL/);

    const withRedis = runBaton(["serve", "--config", FIXTURES, "--port", "0", "--role", "worker"], { env: { DATABASE_URL: database.url, REDIS_URL } });
    expect(await withRedis.exited).toBe(1);
    expect(withRedis.output().stderr).toMatch(/A Baton process without REDIS_URL serves this database alone/);

    alone.child.kill("SIGTERM");
    expect(await alone.exited).toBe(0);
  });
});
