/**
 * Limits of the wire contract. The server may be configured with a smaller
 * `maxStateBytes`; the id rules are fixed because they protect storage keys.
 */
export const LIMITS = {
  /** Longest room, user or connection id, in UTF-16 code units. */
  maxIdLength: 128,
  /** Default cap on one connection's serialized state (UTF-8 bytes of its JSON). */
  defaultMaxStateBytes: 16_384,
  /** Deepest nesting of objects/arrays inside a state value (the state object is depth 1). */
  maxStateDepth: 16,
  /** Most top-level keys in a state object or patch. */
  maxStateKeys: 256,
  /** Longest top-level state key, in UTF-16 code units. */
  maxStateKeyLength: 128,
  /** Default cap on the JSON of one custom message's `data`, in UTF-8 bytes. */
  defaultMaxMessageBytes: 65_536,
  /** Longest custom event name. */
  maxEventNameLength: 64,
} as const;

/**
 * Characters an id may not contain: C0/C1 control characters and DEL (they
 * corrupt logs and protocol frames), and `{` `}` (they would change the Redis
 * Cluster hash tag of a key and move it to another slot).
 */
export const FORBIDDEN_ID_CHARS = /[\u0000-\u001f\u007f-\u009f{}]/;

/** State keys that would pollute prototypes if assigned with `obj[key] = v`. */
export const FORBIDDEN_STATE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Custom event names: letters, digits and `_ . : -`, starting with a letter or digit. */
export const EVENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
