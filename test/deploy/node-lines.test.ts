/**
 * The supported Node.js lines, said in four places that must agree:
 * package.json's engines, the releases .ci/run tests on (.ci/node-lines),
 * the Docker image (the newest line, the active LTS) and the README
 * (docs/node-lines.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import semver from "semver";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/process.ts";

const engines: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).engines.node;
const tested = readFileSync(join(ROOT, ".ci/node-lines"), "utf8")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));
const testedMajors = tested.map((version) => semver.major(version));
/** The first release of each range engines names: 20.19.0, 22.12.0, 24.0.0. */
const floors = new semver.Range(engines).set.map((comparators) => semver.minVersion(new semver.Range(comparators.map(String).join(" ")))!);

describe("supported Node.js lines", () => {
  it("engines admits every release .ci/run tests on, and the Node running this test", () => {
    expect(tested.length).toBeGreaterThan(0);
    for (const version of [...tested, process.versions.node]) expect(semver.satisfies(version, engines), `${version} in ${engines}`).toBe(true);
  });

  it("every line engines admits has a release in .ci/node-lines, one per line", () => {
    expect(floors.map(String)).toEqual(["20.19.0", "22.12.0", "24.0.0"]);
    // The open range >=24 covers the lines after it: each even major up to the newest tested.
    const newest = Math.max(...testedMajors);
    const admitted = [20, 22];
    for (let major = 24; major <= newest; major += 2) admitted.push(major);
    expect(testedMajors).toEqual(admitted);
  });

  it("the Docker image runs the newest tested line", () => {
    const dockerfile = readFileSync(join(ROOT, "deploy/Dockerfile"), "utf8");
    const image = /^ARG NODE_IMAGE=node:(\d+)-[\w-]+$/m.exec(dockerfile);
    expect(image, "deploy/Dockerfile's NODE_IMAGE default").not.toBeNull();
    expect(Number(image![1])).toBe(Math.max(...testedMajors));
  });

  it("the README's quick start names each line's lowest release", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const paragraph = /^You need .*?(?=\n\n)/ms.exec(readme)?.[0];
    expect(paragraph, 'the README\'s "You need" paragraph').toBeDefined();
    // Versions only: dates (2026-04-30) would otherwise say "26".
    const need = paragraph!.replace(/\d{4}-\d{2}-\d{2}/g, "").replace(/\s+/g, " ");
    const says = (version: string) => new RegExp(`(?<![\\d.])${version.replace(".", "\\.")}(?![\\d]|\\.\\d)`).test(need);
    for (const floor of floors) expect(says(floor.minor === 0 ? String(floor.major) : `${floor.major}.${floor.minor}`), `${floor.version} in: ${need}`).toBe(true);
    for (const major of testedMajors) expect(says(String(major)), `${major} in: ${need}`).toBe(true);
  });
});
