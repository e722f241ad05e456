/**
 * The free-block index of the buddy allocator and its split/merge primitives (the state behind
 * `struct drm_buddy`), over the block store in `buddy-store.ts`.
 *
 * Free blocks are indexed per order and per clear state in offset-ordered trees (what the kernel's
 * 2025 RB-tree rewrite and its clear/dirty tree split do), so "highest free block of order k" and
 * "free block of order k overlapping [start, end)" are O(log n). On top of that we index *free
 * buddy pairs* (both halves free — outside a transient split, only when their clear states differ)
 * per order, so the force-merge fallback finds its next pair in O(log n) instead of the kernel's
 * scan of every free block.
 *
 * @internal
 */
import { IdTreap, Store } from "./buddy-store.ts"

// Module-local copies of the store's constants: imported bindings are property loads through
// getters under some loaders (tsx/esbuild CJS interop); locals are inlined.
const NIL = -1
const FREE = 0
const SPLIT = 1

/** Free-block trees, free-pair index and the split/merge primitives. @internal */
export class FreeIndex {
  readonly s: Store
  /** `trees[clear][order]`: free blocks keyed by offset. */
  private readonly trees: ReadonlyArray<ReadonlyArray<IdTreap>>
  /** `pairs[order]`: parents (keyed by offset) whose two order-`order` children are both free. */
  private readonly pairs: ReadonlyArray<IdTreap>
  readonly chunkSize: number
  readonly maxOrder: number
  /** Bytes in free blocks marked clear (`mm->clear_avail`). */
  clearAvail = 0
  /** Second result of {@link halve} (the right half); the left half is returned. */
  right = NIL

  constructor(maxOrder: number, chunkSize: number) {
    this.s = new Store(chunkSize, maxOrder)
    const mk = () => Array.from({ length: maxOrder + 1 }, () => new IdTreap(this.s))
    this.trees = [mk(), mk()]
    this.pairs = mk()
    this.chunkSize = chunkSize
    this.maxOrder = maxOrder
  }

  tree(clear: number, order: number): IdTreap {
    return (this.trees[clear] as ReadonlyArray<IdTreap>)[order] as IdTreap
  }

  private pairTree(order: number): IdTreap {
    return this.pairs[order] as IdTreap
  }

  /** `mark_free`: state FREE, into its tree, and into the pair index when its buddy is free too. */
  markFree(b: number): void {
    const s = this.s
    s.st[b] = FREE
    const order = s.ord[b] as number
    this.tree(s.clr[b] as number, order).insert(b)
    const buddy = s.buddy(b)
    if (buddy !== NIL && s.st[buddy] === FREE) this.pairTree(order).insert(s.par[b] as number)
  }

  /** Takes a free block out of the index (before it is split, allocated or merged away). */
  unmarkFree(b: number): void {
    const s = this.s
    const order = s.ord[b] as number
    this.tree(s.clr[b] as number, order).delete(s.off[b] as number)
    const buddy = s.buddy(b)
    if (buddy !== NIL && s.st[buddy] === FREE) this.pairTree(order).delete(s.off[s.par[b] as number] as number)
  }

  /**
   * The common part of every split (`split_block`): `b` leaves the index (if free) and becomes
   * SPLIT; its two halves inherit its clear bit and are *not* indexed. Returns the left half; the
   * right half is in {@link right}.
   */
  halve(b: number): number {
    const s = this.s
    if (s.st[b] === FREE) this.unmarkFree(b)
    const order = (s.ord[b] as number) - 1
    const off = s.off[b] as number
    const clear = s.clr[b] as number
    const l = s.make(b, order, off, clear)
    const r = s.make(b, order, off + (s.sizes[order] as number), clear)
    s.clr[b] = 0
    s.st[b] = SPLIT
    s.lft[b] = l
    s.rgt[b] = r
    this.right = r
    return l
  }

  /** `split_block` with both halves indexed as free. */
  split(b: number): void {
    const l = this.halve(b)
    const r = this.right
    this.markFree(l)
    this.markFree(r)
  }

  /** Splits and indexes one half only; returns the other (unindexed) for further splitting or use. */
  splitKeep(b: number, keepRight: boolean): number {
    const l = this.halve(b)
    const r = this.right
    this.markFree(keepRight ? l : r)
    return keepRight ? r : l
  }

  /**
   * `__drm_buddy_free`: merges `b` (not in the index) with its free buddy while possible and
   * re-indexes the result. Without `force`, buddies merge only when their clear states match and a
   * merged clear pair stays clear; with `force` the clear state is dropped: merged blocks are
   * dirty and leave `clearAvail`. Returns the final block.
   */
  mergeUp(b: number, force: boolean): number {
    const s = this.s
    for (;;) {
      const p = s.par[b] as number
      if (p === NIL) break
      const buddy = s.buddy(b)
      if (s.st[buddy] !== FREE) break
      if (!force) {
        if (s.clr[buddy] !== s.clr[b]) break
        if (s.clr[b] === 1) s.clr[p] = 1
      }
      this.unmarkFree(buddy)
      if (force && s.clr[buddy] === 1) this.clearAvail -= s.size(buddy)
      s.release(b)
      s.release(buddy)
      s.lft[p] = NIL
      s.rgt[p] = NIL
      b = p
    }
    this.markFree(b)
    return b
  }

  /**
   * `__force_merge`: merges free buddy pairs of differing clear state, highest offset first and
   * largest order below `minOrder` first, until a free block of at least `minOrder` inside
   * `[start, end)` exists. Returns whether it got one.
   */
  forceMerge(start: number, end: number, minOrder: number): boolean {
    const s = this.s
    for (let i = minOrder - 1; i >= 0; i--) {
      const pairs = this.pairTree(i)
      const half = s.sizes[i] as number
      let p = pairs.floor(end)
      while (p !== NIL) {
        const off = s.off[p] as number
        if (off + 2 * half <= start) break
        const prev = pairs.floor(off, true)
        const leftIn = off >= start && off + half <= end
        const rightIn = off + half >= start && off + 2 * half <= end
        if (leftIn || rightIn) {
          const l = s.lft[p] as number
          this.unmarkFree(l)
          if (s.clr[l] === 1) this.clearAvail -= half
          if ((s.ord[this.mergeUp(l, true)] as number) >= minOrder) return true
        }
        p = prev
      }
    }
    return false
  }

  /** Free block ids of one order and clear state, ascending offset. */
  freeIds(clear: number, order: number): Array<number> {
    return this.tree(clear, order).ids()
  }
}
