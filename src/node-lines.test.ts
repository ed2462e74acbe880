/**
 * `drive`: one resolution, written as a generator, on a synchronous or an
 * asynchronous `nextResolve`; `nativeModuleMismatch`: Node's refusal of a
 * native module built for another line, turned into what to run.
 */
import { describe, expect, it } from "vitest";
import { drive, nativeModuleMismatch } from "./node-lines.js";

type Found = { url: string } | undefined;

/** Tries `a` from two parents; answers which one found it, or "none". */
function* twoParents(): Generator<[string, string], string, Found> {
  const first = yield ["a", "file:///one/"];
  if (first !== undefined) return `one:${first.url}`;
  const second = yield ["a", "file:///two/"];
  return second === undefined ? "none" : `two:${second.url}`;
}

const notFound = () => Object.assign(new Error("not found"), { code: "ERR_MODULE_NOT_FOUND" });
const requireNotFound = () => Object.assign(new Error("not found"), { code: "MODULE_NOT_FOUND" });

describe("drive", () => {
  it("answers synchronously on a synchronous nextResolve, passing each parent and keeping the context", () => {
    const asked: unknown[] = [];
    const result = drive(twoParents(), { conditions: ["node"] }, (specifier: unknown, context: unknown) => {
      asked.push([specifier, context]);
      if ((context as { parentURL: string }).parentURL === "file:///one/") throw notFound();
      return { url: "file:///two/a.js" };
    });
    expect(result).toBe("two:file:///two/a.js");
    expect(asked).toEqual([
      ["a", { conditions: ["node"], parentURL: "file:///one/" }],
      ["a", { conditions: ["node"], parentURL: "file:///two/" }],
    ]);
  });

  it("answers with a promise on an asynchronous nextResolve", async () => {
    const result = drive(twoParents(), {}, async () => ({ url: "file:///one/a.js" }));
    expect(result).toBeInstanceOf(Promise);
    expect(await result).toBe("one:file:///one/a.js");
  });

  it("takes both kinds of not-found as an answer, from either kind of nextResolve", async () => {
    expect(drive(twoParents(), {}, () => { throw requireNotFound(); })).toBe("none");
    expect(await drive(twoParents(), {}, () => Promise.reject(notFound()))).toBe("none");
  });

  it("rethrows any other error, synchronously or as a rejection", async () => {
    const broken = Object.assign(new Error("bad package.json"), { code: "ERR_INVALID_PACKAGE_CONFIG" });
    expect(() => drive(twoParents(), {}, () => { throw broken; })).toThrow("bad package.json");
    await expect(drive(twoParents(), {}, () => Promise.reject(broken))).rejects.toThrow("bad package.json");
  });
});

describe("nativeModuleMismatch", () => {
  // Node's own error, as Node 26 threw it for a node_modules installed under Node 20.
  const refused = Object.assign(
    new Error(
      "The module '/srv/app/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\n" +
        "was compiled against a different Node.js version using\n" +
        "NODE_MODULE_VERSION 115. This version of Node.js requires\n" +
        "NODE_MODULE_VERSION 147. Please try re-compiling or re-installing\n" +
        "the module (for instance, using `npm rebuild` or `npm install`).",
    ),
    { code: "ERR_DLOPEN_FAILED" },
  );

  it("names the package, both ABIs, this Node and the command that fixes it", () => {
    const mismatch = nativeModuleMismatch(refused)!;
    expect(mismatch.problem).toBe(`better-sqlite3 was built for another Node.js line (ABI 115); this Node.js ${process.version} needs ABI 147`);
    expect(mismatch.fix).toMatch(/^reinstall it with this Node: npm rebuild better-sqlite3 \(or npm ci\), adding --nodedir=\S+ if npm's config names another Node's headers/);
  });

  it("names a scoped package", () => {
    const scoped = new Error(refused.message.replace("node_modules/better-sqlite3/", "node_modules/@scope/native/"));
    expect(nativeModuleMismatch(scoped)?.problem).toMatch(/^@scope\/native was built/);
  });

  it("leaves every other error alone", () => {
    for (const other of [new Error("SQLITE_CANTOPEN: unable to open database file"), Object.assign(new Error("no such file"), { code: "ENOENT" }), "a string", undefined, null]) {
      expect(nativeModuleMismatch(other)).toBeUndefined();
    }
  });
});
