/**
 * Generative UI at start: bundles each component file the `ui` key of
 * langgraph.json names, with the official bundler (`build` of
 * `@langchain/langgraph-ui`, honouring `ui_config.shared`), and keeps the
 * files in memory for src/http/routes/ui.ts to serve. A file that does not
 * bundle fails start-up with a message naming it. `baton dev` restarts the
 * server when a component's source changes, which bundles it again.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { ConfigError } from "./config.ts";
import { coerceError } from "./core/errors.ts";
import type { Logger } from "./core/logger.ts";
import type { UiBundles, UiFile } from "./http/routes/ui.ts";

const UiDefs = z.record(z.string().min(1), z.string().min(1), { error: "a map of agent name to a component file (.tsx)" });
const UiConfig = z.object({ shared: z.array(z.string()).optional() }, { error: "an object such as { \"shared\": [\"package\"] }" });

function parseKey<S extends z.ZodType>(key: string, schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ConfigError(`langgraph.json '${key}' is invalid: ${result.error.issues.map((i) => `${[key, ...i.path].join(".")}: ${i.message}`).join("; ")}`);
  return result.data;
}

/** The bundles of the project's `ui` key (none without it). */
export async function bundleUi(project: { ui?: unknown; ui_config?: unknown }, baseDir: string, logger: Logger): Promise<UiBundles> {
  if (project.ui == null) return new Map();
  const defs = parseKey("ui", UiDefs, project.ui);
  const config = project.ui_config == null ? {} : parseKey("ui_config", UiConfig, project.ui_config);
  // Loaded only for projects with a UI: the bundler brings esbuild and Tailwind.
  const { build } = await import("@langchain/langgraph-ui");
  const started = Date.now();
  // The published build writes its output to a folder; read it back and drop the folder.
  const scratch = await mkdtemp(join(tmpdir(), "baton-ui-"));
  try {
    const bundles = await Promise.all(
      Object.entries(defs).map(async ([agent, path], index): Promise<[string, UiFile[]]> => {
        const output = join(scratch, String(index));
        try {
          // One build per agent, so that a failure names its file.
          await build({ defs: { [agent]: path }, cwd: baseDir, config, output });
        } catch (error) {
          throw new ConfigError(`UI '${agent}' (${resolve(baseDir, path)}, from langgraph.json 'ui') failed to bundle: ${coerceError(error).message}`);
        }
        const folder = join(output, "public", agent);
        const names = (await readdir(folder)).sort();
        return [agent, await Promise.all(names.map(async (basename) => ({ basename, contents: new Uint8Array(await readFile(join(folder, basename))) })))];
      }),
    );
    logger.info("ui:bundled", { agents: Object.keys(defs), ms: Date.now() - started });
    return new Map(bundles);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
