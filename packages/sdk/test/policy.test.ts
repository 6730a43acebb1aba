import { describe, expect, it } from 'vitest';
import { ERROR_CODE_LIST, type ErrorCode } from 'realtime-message-protocol/core';
import type { ClientErrorCode } from '../src/errors.js';
import { heartbeatErrorAction, type HeartbeatAction } from '../src/policy.js';

// A Record over every code: a code added to the registry makes this table (and the policy's switch) fail to compile.
const expected: Record<ErrorCode | ClientErrorCode, HeartbeatAction> = {
  stale_epoch: 'stop',
  not_joined: 'rejoin',
  invalid_payload: 'reject',
  payload_too_large: 'reject',
  forbidden: 'reject',
  already_subscribed: 'reject',
  rate_limited: 'retry',
  internal: 'retry',
  unavailable: 'retry',
  unauthorized: 'retry',
  timeout: 'retry',
  disconnected: 'wait',
  closed: 'wait',
};

describe('heartbeat error policy', () => {
  it('has an action for every code of the protocol registry', () => {
    for (const code of ERROR_CODE_LIST) expect([code, heartbeatErrorAction(code)]).toEqual([code, expected[code]]);
    expect(Object.keys(expected).sort()).toEqual([...ERROR_CODE_LIST, 'timeout', 'disconnected', 'closed'].sort());
  });

  it('maps the client-side codes: a timeout is retried and reported, a lost connection waits for the rejoin', () => {
    expect(heartbeatErrorAction('timeout')).toBe('retry');
    expect(heartbeatErrorAction('disconnected')).toBe('wait');
    expect(heartbeatErrorAction('closed')).toBe('wait');
  });

  it('a stale epoch stops, a forgotten connection rejoins, a bad patch is rejected, an overload is retried', () => {
    expect(heartbeatErrorAction('stale_epoch')).toBe('stop');
    expect(heartbeatErrorAction('not_joined')).toBe('rejoin');
    expect(heartbeatErrorAction('payload_too_large')).toBe('reject');
    expect(heartbeatErrorAction('rate_limited')).toBe('retry');
  });

  it('treats a code from a newer server that this SDK does not know as transient', () => {
    expect(heartbeatErrorAction('some_future_code' as ErrorCode)).toBe('retry');
  });
});
