import { describe, expect, it } from 'vitest';
import { RequestLog, type RequestLogEntry } from '../../../src/emulator/request-log.js';

function entry(status: number, extra: Partial<RequestLogEntry> = {}): RequestLogEntry {
  return {
    seq: 0,
    at: 0,
    requestId: 'req_x',
    method: 'POST',
    path: '/v1/messages',
    model: 'm',
    status,
    errorType: status === 200 ? null : 'api_error',
    billing: false,
    rateLimit: null,
    retryAfterSeconds: null,
    promptHash: 'abc',
    attempt: 1,
    inputTokens: 10,
    outputTokens: 5,
    cacheCreationInputTokens: 2,
    cacheReadInputTokens: 3,
    stopReason: null,
    fault: null,
    batchId: null,
    ...extra,
  };
}

describe('RequestLog', () => {
  it('keeps the newest entries up to its capacity and counts everything', () => {
    const log = new RequestLog(3);
    for (let i = 0; i < 5; i++) log.record(entry(i % 2 === 0 ? 200 : 500));
    expect(log.entries().map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(log.entries(4).map((e) => e.seq)).toEqual([5]);
    expect(log.entries(0, 2).map((e) => e.seq)).toEqual([4, 5]);
    expect(log.counters()).toMatchObject({
      requests: 5,
      byStatus: { '200': 3, '500': 2 },
      byErrorType: { api_error: 2 },
      tokens: { input: 30, output: 15, cacheCreation: 6, cacheRead: 9 },
    });
  });

  it('hands out copies, and a size of 0 keeps counters only', () => {
    const log = new RequestLog(2);
    log.record(entry(200));
    const [copy] = log.entries();
    if (copy) copy.status = 999;
    expect(log.entries()[0]?.status).toBe(200);
    const off = new RequestLog(0);
    off.record(entry(200));
    expect(off.entries()).toEqual([]);
    expect(off.counters().requests).toBe(1);
  });

  it('clear starts over', () => {
    const log = new RequestLog(2);
    log.record(entry(429, { rateLimit: 'requests' }));
    expect(log.counters().rateLimited.requests).toBe(1);
    log.clear();
    expect(log.lastSeq).toBe(0);
    expect(log.counters().requests).toBe(0);
    log.record(entry(200));
    expect(log.entries()[0]?.seq).toBe(1);
  });
});
