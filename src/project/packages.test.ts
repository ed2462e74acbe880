import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSharedPackages, isSupported, resolveSharedPackages } from "./packages.ts";

const ROOT = join(import.meta.dirname, "../..");

describe("shared LangChain packages", () => {
  it("accepts 1.x from 1.0.0 on, and nothing older, newer or not a version", () => {
    for (const ok of ["1.0.0", "1.7.3", "1.99.0-rc.1", "1.4.0+build"]) expect(isSupported("@langchain/langgraph", ok), ok).toBe(true);
    for (const bad of ["0.2.74", "0.4.9", "1.0.0-rc.1", "2.0.0", "2.0.0-alpha.1", "latest", ""]) expect(isSupported("@langchain/core", bad), bad).toBe(false);
  });

  it("reads the versions Baton's own installed packages declare, and finds them supported", () => {
    const packages = resolveSharedPackages(ROOT);
    for (const p of packages) {
      const declared = (JSON.parse(readFileSync(join(ROOT, "node_modules", p.name, "package.json"), "utf8")) as { version: string }).version;
      expect(p).toMatchObject({ version: declared, dir: join(ROOT, "node_modules", p.name), fromProject: true });
    }
    expect(() => checkSharedPackages(packages)).not.toThrow();
  });

  it("names package, version, folder and range when refusing", () => {
    expect(() => checkSharedPackages([{ name: "@langchain/core", version: "0.3.66", dir: "/p/node_modules/@langchain/core", fromProject: true }])).toThrow(
      "@langchain/core 0.3.66 (at /p/node_modules/@langchain/core) is not supported: Baton needs >=1.0.0 <2.0.0",
    );
  });
});
