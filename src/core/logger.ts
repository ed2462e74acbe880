/**
 * Structured logs. Every line says what happened (`msg`, an event name such
 * as `run:claimed`) and to which run, thread or graph (fields).
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export const LEVEL_ORDER: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A `time` field (ISO 8601) in `fields` stands for when the event happened (a line relayed from another thread). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level: LogLevel;
  /** `json`: one JSON object per line; `pretty`: readable lines for `baton dev`. */
  format: "json" | "pretty";
  write: (line: string) => void;
}

export function createLogger(options: LoggerOptions): Logger {
  const min = LEVEL_ORDER[options.level];
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVEL_ORDER[level] < min) return;
    if (options.format === "json") {
      options.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
      return;
    }
    const { time: at, ...others } = fields ?? {};
    const time = (typeof at === "string" ? at : new Date().toISOString()).slice(11, 23);
    const rest = Object.entries(others)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    options.write(`${time} ${level.padEnd(5)} ${msg}${rest ? " " + rest : ""}\n`);
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
