// Released location ids waiting for reuse (locations.ts LmdbLocationIds).
//
// Taken from the top of a stack, O(1). The Set alone was taken from its
// front, where V8 keeps deleted entries until it rehashes: with 100,000
// free ids a take walked tens of thousands of them. Any id can also leave
// (a bind of a free id): the Set says what is free, and the stack keeps the
// departed id until a take skips it, or a compaction once most of the stack
// is such leftovers.

export class FreeIds {
  private readonly members = new Set<number>();
  private stack: number[] = [];

  get size(): number {
    return this.members.size;
  }

  /** Stack entries, departed ids included (bounded: twice the members). */
  get held(): number {
    return this.stack.length;
  }

  has(id: number): boolean {
    return this.members.has(id);
  }

  add(id: number): void {
    if (this.members.has(id)) return;
    this.members.add(id);
    this.stack.push(id);
  }

  delete(id: number): void {
    if (!this.members.delete(id)) return;
    // Costs the members' count, after at least as many deletes: O(1) each.
    if (this.stack.length > 2 * this.members.size) this.stack = [...this.members];
  }

  /** The most recently freed id, or undefined when none is free. */
  take(): number | undefined {
    while (this.stack.length > 0) {
      const id = this.stack.pop() as number;
      if (this.members.delete(id)) return id;
    }
    return undefined;
  }
}
