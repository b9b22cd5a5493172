import { describe, expect, it } from 'vitest';
import { ConcurrencySizer } from '../../../src/worker/concurrency-sizer.js';

/** Gauges set by the test: what the worker would report at each tick. */
function gauges() {
  const g = { active: 0, forBudget: 0, forSlot: 0 };
  return {
    g,
    read: {
      active: () => g.active,
      waitingForBudget: () => g.forBudget,
      waitingForSlot: () => g.forSlot,
    },
  };
}

describe('ConcurrencySizer', () => {
  it('starts at 16 and ramps x1.25 a tick while every slot is busy and the budget has room, up to the ceiling', () => {
    const { g, read } = gauges();
    const sizer = new ConcurrencySizer({ ceiling: 100 }, read);
    expect(sizer.concurrency).toBe(16);
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      g.active = sizer.concurrency;
      seen.push(sizer.tick());
    }
    expect(seen).toEqual([20, 25, 32, 40, 50, 63, 79, 99, 100, 100, 100, 100]);
    expect(sizer.state().limitedBy).toBe('ceiling');
  });

  it('shrinks to what is sending (plus a quarter) while requests wait for the budget', () => {
    const { g, read } = gauges();
    const sizer = new ConcurrencySizer({ ceiling: 512, initial: 400 }, read);
    // 400 taken, 340 of them waiting for the budget: 60 are sending, which is all it admits.
    g.active = 400;
    g.forBudget = 340;
    expect(sizer.tick()).toBe(75);
    expect(sizer.state().limitedBy).toBe('budget');
    // Never below the floor.
    g.active = 10;
    g.forBudget = 10;
    expect(sizer.tick()).toBe(4);
  });

  it("holds while requests wait for the API's concurrency limit, and when idle", () => {
    const { g, read } = gauges();
    const sizer = new ConcurrencySizer({ ceiling: 512 }, read);
    g.active = 16;
    g.forSlot = 12;
    expect(sizer.tick()).toBe(16);
    expect(sizer.state().limitedBy).toBe('api_concurrency');
    g.forSlot = 0;
    g.active = 3;
    expect(sizer.tick()).toBe(16);
    expect(sizer.state().limitedBy).toBe('idle');
  });

  it('after idling with nothing in flight, a new burst ramps from the start again', () => {
    const { g, read } = gauges();
    const sizer = new ConcurrencySizer({ ceiling: 512 }, read);
    for (let i = 0; i < 10; i++) {
      g.active = sizer.concurrency;
      sizer.tick();
    }
    expect(sizer.concurrency).toBeGreaterThan(100);
    g.active = 0;
    expect(sizer.tick()).toBe(16);
  });

  it('a ceiling below the start is the cap from the first request; latency is a moving average', () => {
    const { read } = gauges();
    const sizer = new ConcurrencySizer({ ceiling: 4 }, read);
    expect(sizer.concurrency).toBe(4);
    sizer.observeLatency(1_000);
    sizer.observeLatency(2_000);
    expect(sizer.state()).toMatchObject({ concurrency: 4, ceiling: 4, latencyMs: 1_100 });
  });
});
