/**
 * The fence table of a reservation object (internal, plain data, no Effect): `struct
 * dma_resv_list` with its growth, pruning and add/replace rules. The owning `DmaResv` publishes a
 * list by swapping its reference (the RCU pointer); lockless readers notice the swap and restart.
 *
 * @since 0.1.0
 */
import type { DmaFence } from "../DmaFence.ts"

/** Usage ranks: `DMA_RESV_USAGE_KERNEL(0) < WRITE(1) < READ(2) < BOOKKEEP(3)`. */
export type UsageRank = 0 | 1 | 2 | 3

/** Header bytes of `struct dma_resv_list` before its table (rcu_head + two u32). */
const listHeader = 24
/** Bytes per table entry (a tagged fence pointer). */
const entryBytes = 8
const pageSize = 4096
/** `KMALLOC_MAX_CACHE_SIZE` on a 4 KiB-page SLUB kernel. */
const kmallocMaxCache = 2 * pageSize
const kmallocBuckets = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192]

/** `kmalloc_size_roundup()`: the slab bucket, or whole power-of-two pages above the caches. */
export const kmallocRoundup = (bytes: number): number => {
  if (bytes <= kmallocMaxCache) {
    for (const b of kmallocBuckets) if (b >= bytes) return b
  }
  let size = pageSize
  while (size < bytes) size *= 2
  return size
}

/** Capacity of a list allocated for `wanted` fences, after bucket rounding (`dma_resv_list_alloc`). */
export const allocatedCapacity = (wanted: number): number =>
  Math.floor((kmallocRoundup(listHeader + wanted * entryBytes) - listHeader) / entryBytes)

const roundupPowerOfTwo = (n: number): number => {
  let p = 1
  while (p < n) p *= 2
  return p
}

/** One published fence table. Mutated in place only under the resv lock. */
export class FenceList {
  readonly fences: Array<DmaFence>
  readonly usages: Array<UsageRank>
  count = 0
  max: number

  constructor(max: number) {
    this.max = max
    this.fences = []
    this.usages = []
  }
}

/** The empty, never-published list (kernel: `obj->fences == NULL`). */
export const emptyList = (): FenceList => new FenceList(0)

/**
 * `dma_resv_reserve_fences()` core: returns `list` itself when `n` more appends already fit, else a
 * new, larger list holding the unsignalled fences of `list` (signalled ones are pruned).
 */
export const reserve = (list: FenceList, n: number): FenceList => {
  if (list.count + n <= list.max) return list
  const wanted = list.max > 0 ? Math.max(list.count + n, list.max * 2) : Math.max(4, roundupPowerOfTwo(n))
  const next = new FenceList(allocatedCapacity(wanted))
  for (let i = 0; i < list.count; i++) {
    const f = list.fences[i] as DmaFence
    if (f.isSignaled) continue
    next.fences.push(f)
    next.usages.push(list.usages[i] as UsageRank)
    next.count++
  }
  return next
}

/**
 * `dma_resv_add_fence()` core. Replaces in place the first entry that is signalled, or that has
 * `fence`'s context, a usage rank >= `usage` and a fence that `fence` is later-or-same than;
 * otherwise appends. Returns `"replaced"`, `"appended"`, or `"no-slot"` (nothing changed) when an
 * append finds no reserved slot.
 */
export const add = (list: FenceList, fence: DmaFence, usage: UsageRank): "replaced" | "appended" | "no-slot" => {
  const ctx = fence.context
  for (let i = 0; i < list.count; i++) {
    const old = list.fences[i] as DmaFence
    const replace =
      (old.context === ctx && (list.usages[i] as UsageRank) >= usage && fence.seqno >= old.seqno) || old.isSignaled
    if (replace) {
      list.fences[i] = fence
      list.usages[i] = usage
      return "replaced"
    }
  }
  if (list.count >= list.max) return "no-slot"
  list.fences[list.count] = fence
  list.usages[list.count] = usage
  list.count++
  return "appended"
}

/** `dma_resv_replace_fences()` core: every entry of `context` becomes (`fence`, `usage`). */
export const replaceContext = (list: FenceList, context: DmaFence["context"], fence: DmaFence, usage: UsageRank) => {
  let n = 0
  for (let i = 0; i < list.count; i++) {
    if ((list.fences[i] as DmaFence).context !== context) continue
    list.fences[i] = fence
    list.usages[i] = usage
    n++
  }
  return n
}

/**
 * A fresh list holding `entries`, allocated for `wanted` fences (at least the entries; capacity
 * rounded as an allocation would be); no list at all (capacity 0) without entries.
 */
export const fromEntries = (entries: ReadonlyArray<readonly [DmaFence, UsageRank]>, wanted = 0): FenceList => {
  const list = new FenceList(entries.length === 0 ? 0 : allocatedCapacity(Math.max(wanted, entries.length)))
  for (const [f, u] of entries) {
    list.fences.push(f)
    list.usages.push(u)
    list.count++
  }
  return list
}
