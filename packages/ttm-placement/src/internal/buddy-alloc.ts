/**
 * The allocation searches of the buddy allocator, over the index in `buddy-tree.ts`: from the free
 * trees (bottom order first or top-down), inside a range (fpfn/lpfn), the exact range walk used by
 * `start + size == end` and the contiguous try-harder fallback, and the trim carve.
 *
 * @internal
 */
import type { FreeIndex } from "./buddy-tree.ts"

// Local copies of the store's constants (see buddy-tree.ts).
const NIL = -1
const FREE = 0
const SPLIT = 1
const ALLOCATED = 2

/** Mutable accounting shared with the allocator. @internal */
export interface Accounting {
  avail: number
}

/** Marks a block allocated and charges it (`indexed`: it is still in the free trees). @internal */
export const take = (ix: FreeIndex, acc: Accounting, b: number, indexed: boolean): void => {
  if (indexed) ix.unmarkFree(b)
  const s = ix.s
  s.st[b] = ALLOCATED
  const size = s.size(b)
  acc.avail -= size
  if (s.clr[b] === 1) ix.clearAvail -= size
}

/** Returns an allocated block, keeping its clear bit, and coalesces (`drm_buddy_free_block`). @internal */
export const give = (ix: FreeIndex, acc: Accounting, b: number): void => {
  const s = ix.s
  const size = s.size(b)
  acc.avail += size
  if (s.clr[b] === 1) ix.clearAvail += size
  ix.mergeUp(b, false)
}

/** Highest block of the lowest order (or, top-down, the highest over all orders) in the chosen trees. */
const pick = (ix: FreeIndex, order: number, clear: number, both: boolean, topdown: boolean): number => {
  const off = ix.s.off
  let best = NIL
  for (let o = order; o <= ix.maxOrder; o++) {
    let b = ix.tree(clear, o).last()
    if (both) {
      const c = ix.tree(1 - clear, o).last()
      if (b === NIL || (c !== NIL && (off[c] as number) > (off[b] as number))) b = c
    }
    if (b !== NIL && (best === NIL || (off[b] as number) > (off[best] as number))) best = b
    if (best !== NIL && !topdown) return best
  }
  return best
}

/**
 * `alloc_from_freetree`: a free block of at least `order` from the trees of the wanted clear state —
 * lowest order first, highest offset within it; or, top-down, the highest offset over all orders —
 * falling back to either clear state. Split down (keeping the upper half) to `order`; returned
 * unindexed.
 */
export const fromTrees = (ix: FreeIndex, order: number, clear: number, topdown: boolean): number => {
  let b = pick(ix, order, clear, false, topdown)
  if (b === NIL) b = pick(ix, order, clear, true, topdown)
  if (b === NIL) return NIL
  const s = ix.s
  if (s.st[b] === FREE) ix.unmarkFree(b)
  while ((s.ord[b] as number) > order) b = ix.splitKeep(b, true)
  return b
}

/** Lowest aligned placement of a `req`-byte block inside `b ∩ [start, end)`, or -1. */
const placementIn = (ix: FreeIndex, b: number, start: number, end: number, req: number): number => {
  const s = ix.s
  const lo = Math.max(start, s.off[b] as number)
  const p = Math.ceil(lo / req) * req
  return p + req <= Math.min(end, s.end(b)) ? p : -1
}

let hitBlock = NIL
let hitAt = -1

/** Lowest placement in one tree of order `o`: only the two blocks straddling `start` may fail. */
const lowestIn = (ix: FreeIndex, clear: number, o: number, start: number, end: number, req: number): void => {
  const tree = ix.tree(clear, o)
  const size = ix.s.sizes[o] as number
  let b = tree.ceil(start - size + 1)
  for (let i = 0; i < 2 && b !== NIL && (ix.s.off[b] as number) < end; i++) {
    const at = placementIn(ix, b, start, end, req)
    if (at >= 0) {
      if (hitBlock === NIL || at < hitAt) {
        hitBlock = b
        hitAt = at
      }
      return
    }
    b = tree.ceil(ix.s.off[b] as number, true)
  }
}

const searchRange = (ix: FreeIndex, start: number, end: number, order: number, clear: number, both: boolean) => {
  const req = ix.s.sizes[order] as number
  hitBlock = NIL
  hitAt = -1
  for (let o = order; o <= ix.maxOrder; o++) {
    lowestIn(ix, clear, o, start, end, req)
    if (both) lowestIn(ix, 1 - clear, o, start, end, req)
  }
}

/**
 * `__drm_buddy_alloc_range_bias`: the lowest-address free block of `order` that fits in
 * `[start, end)`, carved out of a larger free block if needed (splitting towards it). First pass
 * only looks at blocks of the wanted clear state, second pass at all. Returned unindexed.
 */
export const inRange = (ix: FreeIndex, start: number, end: number, order: number, clear: number): number => {
  searchRange(ix, start, end, order, clear, false)
  if (hitBlock === NIL) searchRange(ix, start, end, order, clear, true)
  if (hitBlock === NIL) return NIL
  const s = ix.s
  let b = hitBlock
  const at = hitAt
  if (s.st[b] === FREE) ix.unmarkFree(b)
  while ((s.ord[b] as number) > order) {
    const o = s.ord[b] as number
    b = ix.splitKeep(b, at >= (s.off[b] as number) + (s.sizes[o - 1] as number))
  }
  return b
}

/** Outcome of {@link exactRange}. @internal */
export interface RangeOutcome {
  readonly ok: boolean
  readonly blocks: Array<number>
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
  roots: ReadonlyArray<number>,
  start: number,
  size: number,
  partial: boolean
): RangeOutcome => {
  const s = ix.s
  const end = start + size
  const stack = [...roots].reverse()
  const blocks: Array<number> = []
  let filled = 0
  let ok = true
  while (stack.length > 0) {
    const b = stack.pop() as number
    const bo = s.off[b] as number
    if (s.end(b) <= start || bo >= end) continue
    const st = s.st[b]
    if (st === ALLOCATED) {
      ok = false
      break
    }
    if (st === FREE && bo >= start && s.end(b) <= end) {
      take(ix, acc, b, true)
      blocks.push(b)
      filled += s.size(b)
      continue
    }
    if (st === FREE) ix.split(b)
    if (s.st[b] === SPLIT) stack.push(s.rgt[b] as number, s.lft[b] as number)
  }
  if (ok && filled >= size) return { ok: true, blocks, filled }
  if (partial) return { ok: false, blocks, filled }
  for (const b of blocks) give(ix, acc, b)
  return { ok: false, blocks: [], filled: 0 }
}

/**
 * Trim core: `b` (allocated, unindexed) keeps `[start, end)` and every other part of it becomes
 * free. Walks down only along the kept range's edges. Pushes the kept blocks, ascending.
 */
export const carve = (
  ix: FreeIndex,
  acc: Accounting,
  b: number,
  start: number,
  end: number,
  out: Array<number>
): void => {
  const s = ix.s
  const bo = s.off[b] as number
  const be = s.end(b)
  if (bo >= start && be <= end) {
    s.st[b] = ALLOCATED
    out.push(b)
    return
  }
  if (be <= start || bo >= end) {
    const size = s.size(b)
    acc.avail += size
    if (s.clr[b] === 1) ix.clearAvail += size
    ix.markFree(b)
    return
  }
  const l = ix.halve(b)
  const r = ix.right
  carve(ix, acc, l, start, end, out)
  carve(ix, acc, r, start, end, out)
}

/**
 * `__alloc_contig_try_harder`: for each free block of order floor(log2(size)), highest first, take
 * `[offset, offset + size)` exactly; when that stops short, take the missing part (rounded up to
 * `minBlock`) right below `offset` instead. Returns the blocks, or undefined (state restored).
 */
export const tryHarder = (
  ix: FreeIndex,
  acc: Accounting,
  roots: ReadonlyArray<number>,
  size: number,
  minBlock: number
): Array<number> | undefined => {
  const s = ix.s
  let order = 0
  while ((s.sizes[order + 1] ?? Number.POSITIVE_INFINITY) <= size) order++
  if (order === 0) return undefined
  const cands = [...ix.freeIds(0, order), ...ix.freeIds(1, order)].map((b) => s.off[b] as number)
  cands.sort((a, b) => b - a)
  for (const off of cands) {
    if (ix.tree(0, order).find(off) === NIL && ix.tree(1, order).find(off) === NIL) continue
    const rhs = exactRange(ix, acc, roots, off, size, true)
    if (rhs.ok) return rhs.blocks
    const lhsSize = Math.ceil(Math.max(size - rhs.filled, minBlock) / minBlock) * minBlock
    if (off - lhsSize >= 0) {
      const lhs = exactRange(ix, acc, roots, off - lhsSize, lhsSize, false)
      if (lhs.ok) return [...lhs.blocks, ...rhs.blocks]
    }
    for (const g of rhs.blocks) give(ix, acc, g)
  }
  return undefined
}
