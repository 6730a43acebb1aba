import { FORBIDDEN_STATE_KEYS, LIMITS } from './limits.js';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };

const utf8 = new TextEncoder();

/** Length of `s` in UTF-8 bytes: the unit of every size limit of the protocol. */
export function utf8Length(s: string): number {
  // Fast path: pure ASCII strings are as long in UTF-8 as in UTF-16.
  return /^[\u0000-\u007f]*$/.test(s) ? s.length : utf8.encode(s).length;
}

/** True when `s` holds a lone surrogate, which UTF-8 cannot encode. */
export function hasLoneSurrogate(s: string): boolean {
  // Two different ids could map to the same storage key after replacement.
  // `isWellFormed` is Node 20+.
  return !(s as string & { isWellFormed(): boolean }).isWellFormed();
}

/** An object literal or `Object.create(null)`: not an array, Date, Buffer or class instance. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Returns why `value` is not plain JSON within the depth limit, or undefined.
 * `path` names the value in the message; `depth` is its own depth (a state
 * object is depth 1).
 */
export function jsonProblem(value: unknown, path: string, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return hasLoneSurrogate(value) ? `${path} is not well-formed Unicode` : undefined;
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} must be a finite number`;
    case 'object': {
      if (value === null) return undefined;
      if (depth > LIMITS.maxStateDepth) return `${path} is nested deeper than ${LIMITS.maxStateDepth} levels`;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const p = jsonProblem(value[i], `${path}[${i}]`, depth + 1);
          if (p) return p;
        }
        return undefined;
      }
      if (!isPlainObject(value)) return `${path} must be plain JSON (got a non-plain object)`;
      for (const key of Object.keys(value)) {
        if (FORBIDDEN_STATE_KEYS.has(key)) return `${path} uses the forbidden key '${key}'`;
        if (hasLoneSurrogate(key)) return `${path} has a key that is not well-formed Unicode`;
        const p = jsonProblem(value[key], `${path}.${key}`, depth + 1);
        if (p) return p;
      }
      return undefined;
    }
    default:
      return `${path} must be JSON (got ${typeof value})`;
  }
}
