// Lint: type-aware rules that matter for concurrent code, plus the import
// boundaries of docs/architecture.md (core knows nothing of drivers or
// backends; backends never import each other or http; drivers get ports).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Forbid imports matching any of the given folder patterns. */
function boundary(files, forbidden, why) {
  return {
    files,
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: forbidden, message: why }] },
      ],
    },
  };
}

/** Each backend's own driver packages; a backend may use its own and no other's. */
const BACKEND_DRIVERS = {
  sqlite: ["better-sqlite3"],
  postgres: ["pg", "pg/*"],
  redis: ["ioredis"],
  memory: [],
};

/** A backend imports core/ (and the files shared by backends) and its own driver only. */
function backendBoundary(name) {
  const others = Object.keys(BACKEND_DRIVERS).filter((other) => other !== name);
  return boundary(
    [`src/backends/${name}/**`],
    [
      // A sibling is reached as ../<name>/ too: the patterns match the import as written.
      ...others.flatMap((other) => [`**/backends/${other}/**`, `../${other}/**`]),
      ...others.flatMap((other) => BACKEND_DRIVERS[other]),
      "**/http/**",
      "**/worker/**",
      "**/cron/**",
      "**/cli/**",
      "**/server.ts",
      "**/config.ts",
      "hono",
      "hono/*",
    ],
    "A backend imports core/ and its own driver only.",
  );
}

export default tseslint.config(
  { ignores: [".scratch/**", ".test-projects/**", "node_modules/**", "dist/**", ".baton/**", "**/.baton/**", "bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      curly: ["error", "multi-line"],
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // LangGraph's and the wire's types are loose JSON; we validate at the edge.
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/require-await": "off",
    },
  },
  { files: ["**/*.js"], ...tseslint.configs.disableTypeChecked },
  boundary(
    ["src/core/**"],
    ["**/backends/**", "**/http/**", "**/worker/**", "**/cron/**", "**/cli/**", "**/server.ts", "**/config.ts", "hono", "hono/*", "better-sqlite3"],
    "core/ imports only core/, LangGraph and zod.",
  ),
  ...Object.keys(BACKEND_DRIVERS).map(backendBoundary),
  boundary(
    ["src/http/**", "src/worker/**", "src/cron/**"],
    ["**/backends/**", "**/server.ts", "**/cli/**", "better-sqlite3"],
    "Drivers receive ports and services; they never import backends.",
  ),
  boundary(
    ["src/cli/**"],
    ["**/backends/**", "**/http/**", "**/worker/**", "**/core/**"],
    "cli/ imports config.ts and server.ts only.",
  ),
);
