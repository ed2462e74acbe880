/** `drive`: one resolution, written as a generator, on a synchronous or an asynchronous `nextResolve`. */
import { describe, expect, it } from "vitest";
import { drive } from "./node-lines.js";

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
