import { z } from 'zod';
import { isPlainObject, jsonProblem, utf8Length, type JsonValue } from '../shared/json.js';
import { LIMITS } from '../shared/limits.js';

/** A connection's state: a JSON object. */
export type PresenceState = { [key: string]: JsonValue };
/** A patch: top-level keys replace, `null` deletes the key. */
export type StatePatch = { [key: string]: JsonValue };

interface StateObjectLimits {
  /** Most top-level keys. */
  maxKeys?: number;
  /** Largest JSON text, in UTF-8 bytes; above it the issue is marked `tooLarge`. */
  maxBytes?: number;
}

/**
 * A JSON object whose top-level keys are 1..maxStateKeyLength characters,
 * nested at most maxStateDepth deep, without prototype-polluting keys, and
 * within the given count and size limits.
 */
export function stateObjectSchema<T>(what: string, limits: StateObjectLimits = {}) {
  return z.unknown().transform((value, ctx): T => {
    if (!isPlainObject(value)) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a JSON object` });
      return z.NEVER;
    }
    const keys = Object.keys(value);
    if (limits.maxKeys !== undefined && keys.length > limits.maxKeys) {
      ctx.addIssue({ code: 'custom', message: `${what} has more than ${limits.maxKeys} keys` });
      return z.NEVER;
    }
    for (const key of keys) {
      if (key.length === 0 || key.length > LIMITS.maxStateKeyLength) {
        ctx.addIssue({ code: 'custom', message: `${what} keys must be 1..${LIMITS.maxStateKeyLength} characters` });
        return z.NEVER;
      }
    }
    const problem = jsonProblem(value, what, 1);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    if (limits.maxBytes !== undefined) {
      const bytes = utf8Length(JSON.stringify(value));
      if (bytes > limits.maxBytes) {
        ctx.addIssue({
          code: 'custom',
          message: `${what} is ${bytes} bytes of JSON; the limit is ${limits.maxBytes}`,
          params: { tooLarge: true },
        });
        return z.NEVER;
      }
    }
    return value as T;
  });
}
