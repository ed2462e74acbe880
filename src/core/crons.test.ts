import { describe, expect, it } from "vitest";
import { fireTime, nextFire, Schedule, type Cron } from "./crons.ts";

const at = (iso: string) => Date.parse(iso);
const cron = (extra: Partial<Cron>): Cron => ({
  cron_id: "c",
  assistant_id: "a",
  thread_id: null,
  on_run_completed: "delete",
  end_time: null,
  schedule: "0 * * * *",
  timezone: null,
  created_at: "",
  updated_at: "",
  user_id: null,
  payload: {},
  next_run_ms: null,
  metadata: {},
  enabled: true,
  ...extra,
});

describe("schedules", () => {
  it("reads five fields in UTC, six with seconds, and a timezone across DST", () => {
    expect(Schedule.parse("30 9 * * *", null).nextAfter(at("2030-03-01T09:30:00Z"))).toBe(at("2030-03-02T09:30:00Z"));
    expect(Schedule.parse("*/15 * * * * *", null).nextAfter(at("2030-03-01T00:00:01.500Z"))).toBe(at("2030-03-01T00:00:15Z"));
    // 09:00 in New York is 14:00 UTC before the switch to summer time (2030-03-10) and 13:00 after.
    const ny = Schedule.parse("0 9 * * *", "America/New_York");
    expect(ny.nextAfter(at("2030-03-09T00:00:00Z"))).toBe(at("2030-03-09T14:00:00Z"));
    expect(ny.nextAfter(at("2030-03-10T00:00:00Z"))).toBe(at("2030-03-10T13:00:00Z"));
  });

  it("finds the latest time at or before an instant", () => {
    const every5 = Schedule.parse("*/5 * * * * *", null);
    expect(every5.latestAtOrBefore(at("2030-01-01T00:00:10Z"))).toBe(at("2030-01-01T00:00:10Z"));
    expect(every5.latestAtOrBefore(at("2030-01-01T00:00:14.999Z"))).toBe(at("2030-01-01T00:00:10Z"));
  });

  it("refuses what it cannot read, saying what to write", () => {
    expect(() => Schedule.parse("nope", null)).toThrow(/Invalid schedule 'nope'.*five fields/);
    expect(() => Schedule.parse("0 0 31 2 *", null)).toThrow(/never fires/);
    expect(() => Schedule.parse("0 9 * * *", "Not/AZone")).toThrow(/Unknown timezone/);
  });
});

describe("missed fires", () => {
  it("a cron due long ago fires once, for the latest missed time; older ones are skipped", () => {
    const missed = cron({ next_run_ms: at("2030-01-01T01:00:00Z") });
    const now = at("2030-01-01T06:20:00Z");
    expect(fireTime(missed, now)).toBe(at("2030-01-01T06:00:00Z"));
    expect(nextFire(missed, now)).toBe(at("2030-01-01T07:00:00Z"));
  });

  it("never past its end time, and nothing after it", () => {
    const ending = cron({ next_run_ms: at("2030-01-01T01:00:00Z"), end_time: "2030-01-01T03:30:00Z" });
    expect(fireTime(ending, at("2030-01-01T06:20:00Z"))).toBe(at("2030-01-01T03:00:00Z"));
    expect(nextFire(ending, at("2030-01-01T03:00:00Z"))).toBeNull();
  });

  it("nothing before the cron is due, and nothing when disabled", () => {
    expect(fireTime(cron({ next_run_ms: at("2030-01-01T07:00:00Z") }), at("2030-01-01T06:20:00Z"))).toBeNull();
    expect(nextFire(cron({ enabled: false }), at("2030-01-01T06:20:00Z"))).toBeNull();
  });
});
