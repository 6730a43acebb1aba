/** A binary min-heap keyed by `at`. */
export class MinHeap<T extends { at: number }> {
  private items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.at <= item.at) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && a[r]!.at < a[l]!.at ? r : l;
      if (a[c]!.at >= last.at) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }

  /**
   * How many entries have `at <= bound`, counting at most `cap`. O(result):
   * a subtree whose root is later than `bound` is skipped whole.
   */
  countUpTo(bound: number, cap: number): number {
    const a = this.items;
    let n = 0;
    const stack = a.length > 0 ? [0] : [];
    while (stack.length > 0 && n < cap) {
      const i = stack.pop()!;
      if (a[i]!.at > bound) continue;
      n++;
      if (2 * i + 1 < a.length) stack.push(2 * i + 1);
      if (2 * i + 2 < a.length) stack.push(2 * i + 2);
    }
    return n;
  }
}
