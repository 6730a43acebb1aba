/**
 * A Map for the few entries a connection holds (its rooms: almost always
 * one): the first entry lives in two fields, and a real Map is made only for
 * a second one. An empty `Map` costs ~180 bytes of V8 heap with its hash
 * table; this object costs ~48 until a second entry arrives. It has the
 * `Map` methods the transport uses; iteration is in insertion order except
 * that an entry added after the first one left takes the first one's place.
 */
/** The key of an empty first slot (no key of a caller is this symbol): one field less than a flag. */
const NONE: unique symbol = Symbol('no entry');

export class SmallMap<K, V> {
  private k: K | typeof NONE = NONE;
  private v: V | undefined;
  private more: Map<K, V> | undefined;

  private get has1(): boolean {
    return this.k !== NONE;
  }

  get size(): number {
    return (this.has1 ? 1 : 0) + (this.more?.size ?? 0);
  }

  get(key: K): V | undefined {
    if (this.has1 && this.k === key) return this.v;
    return this.more?.get(key);
  }

  has(key: K): boolean {
    return (this.has1 && this.k === key) || (this.more?.has(key) ?? false);
  }

  set(key: K, value: V): this {
    if (this.has1 && this.k === key) this.v = value;
    else if (this.more?.has(key)) this.more.set(key, value);
    else if (!this.has1) {
      this.k = key;
      this.v = value;
    } else (this.more ??= new Map()).set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (this.has1 && this.k === key) {
      this.k = NONE;
      this.v = undefined;
      return true;
    }
    return this.more?.delete(key) ?? false;
  }

  clear(): void {
    this.k = NONE;
    this.v = undefined;
    this.more = undefined;
  }

  *entries(): IterableIterator<[K, V]> {
    if (this.has1) yield [this.k as K, this.v as V];
    if (this.more) yield* [...this.more.entries()];
  }

  *keys(): IterableIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}
