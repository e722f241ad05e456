/**
 * The allocation searches of the buddy allocator, over the tree in `buddy-tree.ts`:
 * from the free trees (bottom order first or top-down), inside a range (fpfn/lpfn), and the exact
 * range walk used by `start + size == end`, trim and the contiguous try-harder fallback.
 *
 * @internal
 */

import type { ITreap } from "./buddy-itreap.ts"
import { ALLOCATED, type Block, FREE, type FreeIndex, SPLIT } from "./buddy-tree.ts"

/** Mutable accounting shared with the allocator. @internal */
export interface Accounting {
  avail: number
}

/** Marks a free block allocated and charges it (`indexed`: still in the free trees). @internal */
export const take = (ix: FreeIndex, acc: Accounting, b: Block, indexed = true): void => {
  if (indexed) ix.unmarkFree(b)
  b.state = ALLOCATED
  acc.avail -= b.size
  if (b.clear) ix.clearAvail -= b.size
}

/** Returns an allocated block, keeping its clear bit, and coalesces (`drm_buddy_free_block`). @internal */
export const give = (ix: FreeIndex, acc: Accounting, b: Block): void => {
  acc.avail += b.size
  if (b.clear) ix.clearAvail += b.size
  ix.mergeUp(b, false)
}

const better = (a: Block | undefined, b: Block | undefined): Block | undefined =>
  a === undefined ? b : b === undefined ? a : b.offset > a.offset ? b : a

/** Highest block of the lowest order (or, top-down, highest over all orders) in the chosen trees. */
const pickFrom = (
  ix: FreeIndex,
  maxOrder: number,
  order: number,
  clear: boolean,
  both: boolean,
  topdown: boolean
): Block | undefined => {
  let best: Block | undefined
  for (let o = order; o <= maxOrder; o++) {
    best = better(best, ix.tree(clear, o).last())
    if (both) best = better(best, ix.tree(!clear, o).last())
    if (best !== undefined && !topdown) return best
  }
  return best
}

/**
 * `alloc_from_freetree`: a free block of at least `order` from the trees of the wanted clear state —
 * lowest order first, highest offset within it; or, top-down, the highest offset over all orders —
 * falling back to either clear state. Splits it down (keeping the upper half) to `order`.
 */
export const fromTrees = (
  ix: FreeIndex,
  maxOrder: number,
  order: number,
  clear: boolean,
  topdown: boolean
): Block | undefined => {
  let b = pickFrom(ix, maxOrder, order, clear, false, topdown)
  if (b === undefined) b = pickFrom(ix, maxOrder, order, clear, true, topdown)
  if (b === undefined) return undefined
  while (b.order > order) b = ix.splitKeep(b, true)
  if (b.state === FREE) ix.unmarkFree(b)
  return b
}

/** Lowest aligned placement of a `req`-byte block inside `b ∩ [start, end)`, or -1. */
const placementIn = (b: Block, start: number, end: number, req: number): number => {
  const lo = Math.max(start, b.offset)
  const p = Math.ceil(lo / req) * req
  return p + req <= Math.min(end, b.end) ? p : -1
}

/** Lowest placement in one order's tree: only the two blocks straddling `start` may fail. */
const lowestIn = (
  tree: ITreap<Block>,
  size: number,
  start: number,
  end: number,
  req: number
): { block: Block; at: number } | undefined => {
  let node = tree.ceil(start - size + 1)
  for (let i = 0; i < 2 && node !== undefined && node.offset < end; i++) {
    const at = placementIn(node, start, end, req)
    if (at >= 0) return { block: node, at }
    node = tree.next(node.offset)
  }
  return undefined
}

/**
 * `__drm_buddy_alloc_range_bias`: the lowest-address free block of `order` that fits in
 * `[start, end)`, carved out of a larger free block if needed (splitting towards it). First pass
 * only looks at blocks of the wanted clear state, second pass at all.
 */
export const inRange = (
  ix: FreeIndex,
  maxOrder: number,
  start: number,
  end: number,
  order: number,
  clear: boolean
): Block | undefined => {
  const req = ix.chunkSize * 2 ** order
  const search = (states: ReadonlyArray<boolean>) => {
    let best: { block: Block; at: number } | undefined
    for (let o = order; o <= maxOrder; o++) {
      const size = ix.chunkSize * 2 ** o
      for (const s of states) {
        const hit = lowestIn(ix.tree(s, o), size, start, end, req)
        if (hit !== undefined && (best === undefined || hit.at < best.at)) best = hit
      }
    }
    return best
  }
  const hit = search([clear]) ?? search([clear, !clear])
  if (hit === undefined) return undefined
  let b = hit.block
  while (b.order > order) b = ix.splitKeep(b, hit.at >= b.offset + b.size / 2)
  if (b.state === FREE) ix.unmarkFree(b)
  return b
}

/** Outcome of {@link exactRange}. @internal */
export interface RangeOutcome {
  readonly ok: boolean
  readonly blocks: Array<Block>
  readonly filled: number
}

/**
 * `__alloc_range`: allocates exactly `[start, start + size)` by walking the tree from `roots`
 * (address order), splitting free blocks that straddle the edges. Fails at the first allocated
 * block. On failure the blocks taken so far are returned (`partial`) or given back.
 */
export const exactRange = (
  ix: FreeIndex,
  acc: Accounting,
  roots: ReadonlyArray<Block>,
  start: number,
  size: number,
  partial: boolean
): RangeOutcome => {
  const end = start + size
  const stack = [...roots].reverse()
  const blocks: Array<Block> = []
  let filled = 0
  let ok = true
  while (stack.length > 0) {
    const b = stack.pop() as Block
    if (b.end <= start || b.offset >= end) continue
    if (b.state === ALLOCATED) {
      ok = false
      break
    }
    if (b.state === FREE && b.offset >= start && b.end <= end) {
      take(ix, acc, b)
      blocks.push(b)
      filled += b.size
      continue
    }
    if (b.state === FREE) ix.split(b)
    if (b.state === SPLIT) stack.push(b.right as Block, b.left as Block)
  }
  if (ok && filled >= size) return { ok: true, blocks, filled }
  if (partial) return { ok: false, blocks, filled }
  for (const b of blocks) give(ix, acc, b)
  return { ok: false, blocks: [], filled: 0 }
}

/** Free blocks of one order in both clear states, highest offset first (try-harder candidates). */
export const freeOfOrderDescending = (ix: FreeIndex, order: number): Array<number> => {
  const out = [...ix.tree(false, order).values(), ...ix.tree(true, order).values()].map((b) => b.offset)
  return out.sort((a, b) => b - a)
}

/**
 * Trim core: `b` (allocated, unindexed) keeps `[start, end)` and every other part of it becomes
 * free. Walks down only along the kept range's edges. Returns the kept blocks, ascending.
 */
export const carve = (
  ix: FreeIndex,
  acc: Accounting,
  b: Block,
  start: number,
  end: number,
  out: Array<Block>
): void => {
  if (b.offset >= start && b.end <= end) {
    b.state = ALLOCATED
    out.push(b)
    return
  }
  if (b.end <= start || b.offset >= end) {
    acc.avail += b.size
    if (b.clear) ix.clearAvail += b.size
    ix.markFree(b)
    return
  }
  const [l, r] = ix.halve(b)
  carve(ix, acc, l, start, end, out)
  carve(ix, acc, r, start, end, out)
}
