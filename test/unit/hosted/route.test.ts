import { describe, expect, it } from 'vitest';
import { initialRoute, parseDeadline, parseVia, routePlanOf, switchAt } from '../../../src/hosted/route.js';

const NOW = Date.UTC(2026, 11, 2, 20, 0, 0);

describe('parseDeadline', () => {
  it('reads durations from now', () => {
    expect(parseDeadline('90m', NOW)).toBe(NOW + 90 * 60_000);
    expect(parseDeadline('6h', NOW)).toBe(NOW + 6 * 3_600_000);
    expect(parseDeadline('1d12h', NOW)).toBe(NOW + 36 * 3_600_000);
    expect(parseDeadline('45s', NOW)).toBe(NOW + 45_000);
  });

  it('reads RFC 3339 times with a zone, and Dates', () => {
    expect(parseDeadline('2026-12-03T06:00:00Z', NOW)).toBe(Date.UTC(2026, 11, 3, 6));
    expect(parseDeadline('2026-12-03T07:00:00+01:00', NOW)).toBe(Date.UTC(2026, 11, 3, 6));
    expect(parseDeadline(new Date(NOW + 1_000), NOW)).toBe(NOW + 1_000);
  });

  it('refuses what it cannot read or what is past, naming the field and the value', () => {
    expect(() => parseDeadline('tomorrow', NOW)).toThrow(/--deadline: .*"tomorrow"/);
    // A local time without a zone would be read in the machine's zone: refused.
    expect(() => parseDeadline('2026-12-03T06:00:00', NOW)).toThrow(/with a zone/);
    expect(() => parseDeadline('2026-12-01T06:00:00Z', NOW)).toThrow(/not in the future/);
    expect(() => parseDeadline('0m', NOW)).toThrow(/not in the future/);
    expect(() => parseDeadline('', NOW)).toThrow(/--deadline/);
  });
});

describe('parseVia', () => {
  it('accepts the three paths and names the others', () => {
    expect(parseVia('batches')).toBe('batches');
    expect(() => parseVia('hosted')).toThrow('--via: must be one of live, batches, auto, got "hosted"');
  });
});

describe('the auto plan', () => {
  const plan = { liveRatePerSec: 10, cancelToEndMs: 60_000 };

  it('switches when the deadline leaves just the cancel and the live time for what is open', () => {
    // 6,000 open at 10/s = 600 s live, plus 60 s from cancel to end.
    expect(switchAt(NOW + 3_600_000, 6_000, plan)).toBe(NOW + 3_600_000 - 660_000);
    expect(switchAt(null, 6_000, plan)).toBe(Number.POSITIVE_INFINITY);
  });

  it('starts hosted only while the deadline leaves room', () => {
    expect(initialRoute('auto', NOW + 3_600_000, 6_000, plan, NOW)).toBe('hosted');
    expect(initialRoute('auto', NOW + 600_000, 6_000, plan, NOW)).toBe('live');
    expect(initialRoute('batches', NOW + 1_000, 6_000, plan, NOW)).toBe('hosted');
    expect(initialRoute('live', null, 6_000, plan, NOW)).toBe('live');
  });

  it('plans the live rate from the settings: the auto rate, else 80 % of --rpm, else 1,000', () => {
    expect(routePlanOf({ autoLiveRpm: 600, rpm: 4_000, hostedCancelMs: 1 }).liveRatePerSec).toBe(10);
    expect(routePlanOf({ autoLiveRpm: 0, rpm: 3_000, hostedCancelMs: 1 }).liveRatePerSec).toBe(40);
    expect(routePlanOf({ autoLiveRpm: 0, rpm: 0, hostedCancelMs: 1 }).liveRatePerSec).toBeCloseTo(1_000 / 60);
  });
});
