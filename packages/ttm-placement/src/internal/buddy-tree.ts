/**
 * The buddy block tree and its free-block index (the state behind `struct drm_buddy`).
 *
 * Free blocks are indexed per order and per clear state in offset-ordered trees (what the kernel's
 * 2025 RB-tree rewrite and its clear/dirty tree split do), so "highest free block of order k" and
 * "free block of order k overlapping [start, end)" are O(log n). On top of that we index *free
 * buddy pairs* (both halves free — which, outside a transient split, only happens when their clear
 * states differ) per order, so the force-merge fallback finds its next pair in O(log n) instead
 * of the kernel's scan of every free block.
 *
 * @internal
 */
import { ITreap, type Links } from "./buddy-itreap.ts"

/** Block state, as in `DRM_BUDDY_HEADER_STATE`. @internal */
export const FREE = 0
/** @internal */
export const SPLIT = 1
/** @internal */
export const ALLOCATED = 2
/** Merged away into its parent: no longer part of the tree. @internal */
export const DEAD = 3

/** One node of the buddy tree (`struct drm_buddy_block`). @internal */
export class Block implements Links<Block> {
  readonly offset: number
  readonly order: number
  readonly size: number
  readonly parent: Block | undefined
  left: Block | undefined = undefined
  right: Block | undefined = undefined
  /** Starts DEAD: only `markFree` (or allocation) makes a block live. */
  state: number = DEAD
  /** Intrusive free-tree links (see `buddy-itreap.ts`). */
  tl: Block | undefined = undefined
  tr: Block | undefined = undefined
  /** `DRM_BUDDY_HEADER_CLEAR`: the memory is known to be zeroed. */
  clear = false

  /** The allocator owning this block (checked on free; the kernel trusts the caller). */
  readonly owner: object

  constructor(owner: object, parent: Block | undefined, order: number, offset: number, size: number) {
    this.owner = owner
    this.parent = parent
    this.order = order
    this.offset = offset
    this.size = size
  }

  /** Treap priority: a hash of offset and order (stable, pseudo-random). */
  get tprio(): number {
    const x = this.offset / 4096
    let h = Math.imul((x >>> 0) ^ Math.floor(x / 4294967296), 0x9e3779b1) ^ Math.imul(this.order + 1, 0x85ebca77)
    h ^= h >>> 15
    h = Math.imul(h, 0xc2b2ae3d)
    return (h ^ (h >>> 13)) >>> 0
  }

  get end(): number {
    return this.offset + this.size
  }

  get buddy(): Block | undefined {
    const p = this.parent
    if (p === undefined) return undefined
    return p.left === this ? p.right : p.left
  }
}

/** Free-block trees, free-pair index and the split/merge primitives. @internal */
export class FreeIndex {
  /** `trees[clear ? 1 : 0][order]`: free blocks keyed by offset. */
  readonly trees: ReadonlyArray<ReadonlyArray<ITreap<Block>>>
  /** `pairs[order]`: parents (keyed by offset) whose two order-`order` children are both free. */
  readonly pairs: ReadonlyArray<ITreap<Block>>
  readonly chunkSize: number
  /** Bytes in free blocks marked clear (`mm->clear_avail`). */
  clearAvail = 0

  constructor(maxOrder: number, chunkSize: number) {
    const mk = () => Array.from({ length: maxOrder + 1 }, () => new ITreap<Block>())
    this.trees = [mk(), mk()]
    this.pairs = mk()
    this.chunkSize = chunkSize
  }

  tree(clear: boolean, order: number): ITreap<Block> {
    return (this.trees[clear ? 1 : 0] as ReadonlyArray<ITreap<Block>>)[order] as ITreap<Block>
  }

  private pairTree(order: number): ITreap<Block> {
    return this.pairs[order] as ITreap<Block>
  }

  /** `mark_free`: state FREE, into its tree, and into the pair index when its buddy is free too. */
  markFree(b: Block): void {
    b.state = FREE
    this.tree(b.clear, b.order).insert(b)
    const buddy = b.buddy
    if (buddy !== undefined && buddy.state === FREE && b.parent !== undefined) {
      this.pairTree(b.order).insert(b.parent)
    }
  }

  /** Takes a free block out of the index (before it is split, allocated or merged away). */
  unmarkFree(b: Block): void {
    this.tree(b.clear, b.order).delete(b.offset)
    const buddy = b.buddy
    if (buddy !== undefined && buddy.state === FREE && b.parent !== undefined) {
      this.pairTree(b.order).delete(b.parent.offset)
    }
  }

  /**
   * `split_block`: a free block becomes SPLIT with two halves that inherit its clear bit. Both
   * halves are indexed as free.
   */
  split(b: Block): void {
    const [l, r] = this.halve(b)
    this.markFree(l)
    this.markFree(r)
  }

  /**
   * Splits a free block but indexes only one half as free; the other is returned unindexed, for
   * the caller to split further or allocate (saves two index updates per level).
   */
  splitKeep(b: Block, keepRight: boolean): Block {
    const [l, r] = this.halve(b)
    this.markFree(keepRight ? l : r)
    return keepRight ? r : l
  }

  /** The common part of a split: unindex `b`, make its (unindexed) halves. */
  halve(b: Block): readonly [Block, Block] {
    const order = b.order - 1
    const half = b.size / 2
    const l = new Block(b.owner, b, order, b.offset, half)
    const r = new Block(b.owner, b, order, b.offset + half, half)
    l.clear = b.clear
    r.clear = b.clear
    if (b.state === FREE) this.unmarkFree(b)
    b.clear = false
    b.state = SPLIT
    b.left = l
    b.right = r
    return [l, r]
  }

  /**
   * `__drm_buddy_free`: merges `b` (not in the index) with its free buddy while possible and
   * re-indexes the result. Without `force`, buddies merge only when their clear states match and a
   * merged clear pair stays clear; with `force` (fallback when space is short) the clear state is
   * dropped: merged blocks are dirty and leave `clearAvail`. Returns the final block.
   */
  mergeUp(b: Block, force: boolean): Block {
    for (;;) {
      const p = b.parent
      const buddy = b.buddy
      if (p === undefined || buddy === undefined || buddy.state !== FREE) break
      if (!force) {
        if (buddy.clear !== b.clear) break
        if (b.clear) p.clear = true
      }
      this.unmarkFree(buddy)
      if (force && buddy.clear) this.clearAvail -= buddy.size
      b.state = DEAD
      buddy.state = DEAD
      p.left = undefined
      p.right = undefined
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
    for (let i = minOrder - 1; i >= 0; i--) {
      const pairs = this.pairTree(i)
      let p = pairs.floor(end)
      while (p !== undefined) {
        if (p.end <= start) break
        const half = p.size / 2
        const leftIn = p.offset >= start && p.offset + half <= end
        const rightIn = p.offset + half >= start && p.end <= end
        const prev = pairs.prev(p.offset)
        if (leftIn || rightIn) {
          const l = p.left as Block
          this.unmarkFree(l)
          if (l.clear) this.clearAvail -= l.size
          if (this.mergeUp(l, true).order >= minOrder) return true
        }
        p = prev
      }
    }
    return false
  }
}
