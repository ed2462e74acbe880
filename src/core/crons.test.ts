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

describe("DST in a timezone (America/New_York, 2030: clocks jump 02:00 -> 03:00 on 10 March, 02:00 -> 01:00 on 3 November)", () => {
  const times = (schedule: string, from: string, n: number) => {
    const parsed = Schedule.parse(schedule, "America/New_York", at(from));
    const out: string[] = [];
    for (let t = at(from); out.length < n; ) {
      t = parsed.nextAfter(t)!;
      out.push(new Date(t).toISOString().slice(0, 16));
    }
    return out;
  };

  it("spring gap: a fixed time that does not exist fires at the jump", () => {
    // 02:30 EST is 07:30Z; on the 10th 02:30 does not exist: 03:00 EDT (07:00Z); then 02:30 EDT (06:30Z).
    expect(times("30 2 * * *", "2030-03-09T00:00:00Z", 3)).toEqual(["2030-03-09T07:30", "2030-03-10T07:00", "2030-03-11T06:30"]);
  });

  it("spring gap: a list of times in the missing hour does not fire that day", () => {
    expect(times("0,30 2 * * *", "2030-03-09T00:00:00Z", 4)).toEqual(["2030-03-09T07:00", "2030-03-09T07:30", "2030-03-11T06:00", "2030-03-11T06:30"]);
  });

  it("spring gap: a step over every hour keeps real time (01:30 EST, then 03:00 EDT)", () => {
    expect(times("*/30 * * * *", "2030-03-10T05:45:00Z", 4)).toEqual(["2030-03-10T06:00", "2030-03-10T06:30", "2030-03-10T07:00", "2030-03-10T07:30"]);
  });

  it("autumn overlap: a fixed time fires once, the first time (01:30 EDT)", () => {
    expect(times("30 1 * * *", "2030-11-02T12:00:00Z", 2)).toEqual(["2030-11-03T05:30", "2030-11-04T06:30"]);
  });

  it("autumn overlap: a list fires at both occurrences of its times", () => {
    expect(times("0,30 1 * * *", "2030-11-02T12:00:00Z", 5)).toEqual(["2030-11-03T05:00", "2030-11-03T05:30", "2030-11-03T06:00", "2030-11-03T06:30", "2030-11-04T06:00"]);
  });

  it("autumn overlap: a step keeps real time through the repeated hour", () => {
    expect(times("*/30 * * * *", "2030-11-03T04:45:00Z", 5)).toEqual(["2030-11-03T05:00", "2030-11-03T05:30", "2030-11-03T06:00", "2030-11-03T06:30", "2030-11-03T07:00"]);
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
