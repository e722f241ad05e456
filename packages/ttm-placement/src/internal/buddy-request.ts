/**
 * One `drm_buddy_alloc_blocks()` request of the buddy allocator: its argument checks and the
 * order loop that gathers blocks from the largest order that still fits down to the minimum,
 * force-merging mixed clear/dirty pairs before giving up.
 *
 * @internal
 */
import { Invalid } from "@drmkit/core"
import type { AllocOptions } from "../Buddy.ts"
import * as A from "./buddy-alloc.ts"
import * as M from "./buddy-math.ts"
import type { FreeIndex } from "./buddy-tree.ts"

// Hot-path bindings copied once (imported bindings can be getter calls under tsx/CJS interop).
const { fromTrees, give, inRange, take } = A
const { badInt, isPow2, log2, pow2 } = M
const NIL = -1

const mk = (what: string, reason: string, value: unknown) => new Invalid({ what, reason, value })

/** The argument checks of `drm_buddy_alloc_blocks()`; `Invalid` names the first bad one. */
export const checkAlloc = (o: AllocOptions, chunkSize: number, total: number): Invalid | undefined => {
  const c = chunkSize
  if (badInt(o.size) || o.size < c || o.size % c !== 0) return mk("size", `must be a positive multiple of ${c}`, o.size)
  const min = o.minBlockSize ?? c
  if (!isPow2(min) || min < c) return mk("minBlockSize", `must be a power of two >= ${c}`, min)
  const start = o.start ?? 0
  const end = o.end ?? total
  if (badInt(start) || start % c !== 0) return mk("start", `must be a multiple of ${c}`, start)
  if (badInt(end) || end % c !== 0) return mk("end", `must be a multiple of ${c}`, end)
  if (end > total) return mk("end", `must be <= ${total}`, end)
  if (start >= end) return mk("start", "must be < end", { start, end })
  if (start + o.size > total) return mk("size", "start + size overflows the allocator", { start, size: o.size })
  return undefined
}

/** A free block of order `k` (range walk or free trees), or NIL. */
const one = (
  ix: FreeIndex,
  k: number,
  start: number,
  end: number,
  range: boolean,
  clear: number,
  topdown: boolean
): number => (range ? inRange(ix, start, end, k, clear) : fromTrees(ix, k, clear, topdown))

/**
 * The order loop of `drm_buddy_alloc_blocks`: `size` bytes in blocks of at least `min` bytes.
 * Returns the taken block ids, or undefined (every block given back) on `-ENOSPC`.
 */
export const allocOrders = (
  ix: FreeIndex,
  acc: A.Accounting,
  chunkSize: number,
  size: number,
  min: number,
  start: number,
  end: number,
  range: boolean,
  o: AllocOptions
): Array<number> | undefined => {
  const clear = o.clear === true ? 1 : 0
  const topdown = o.topdown === true
  const minOrder = log2(min / chunkSize)
  let pages = size / chunkSize
  let order = log2(pages)
  const got: Array<number> = []
  while (pages > 0) {
    order = Math.min(order, log2(pages))
    let b = one(ix, order, start, end, range, clear, topdown)
    while (b === NIL) {
      if (order === minOrder) {
        if (ix.clearAvail > 0 && ix.forceMerge(start, end, minOrder)) {
          b = one(ix, minOrder, start, end, range, clear, topdown)
        }
        if (b !== NIL) break
        for (const g of got) give(ix, acc, g)
        return undefined
      }
      order--
      b = one(ix, order, start, end, range, clear, topdown)
    }
    take(ix, acc, b, false)
    got.push(b)
    pages -= pow2(order)
  }
  return got
}
