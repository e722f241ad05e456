/**
 * The buddy allocator behind VRAM resource managers — models `drivers/gpu/drm/drm_buddy.c`
 * (amdgpu, xe, i915 and the TTM KUnit mock manager all use it).
 *
 * Memory is cut into power-of-two blocks of `chunkSize << order` bytes; a size that is not a power
 * of two becomes several roots. An allocation returns a list of blocks (not necessarily
 * contiguous unless asked). Free blocks carry a clear/dirty bit; buddies coalesce on free only when
 * both are free *and* in the same clear state, and a short allocation force-merges mixed pairs
 * before giving up. Free blocks are indexed in offset-ordered trees per order and clear state (the
 * kernel's 2025 RB-tree design), so fragmented, top-down and range-restricted allocation are
 * O(log n) per order; blocks live in a typed-array slab (no garbage-collector cost per block).
 *
 * Functional core: a plain synchronous class. Fallible calls return an Effect `Result` (lift it
 * with `Effect.fromResult` inside `Effect.gen`); API misuse the kernel `BUG`s on (freeing a block
 * twice or after trimming it, a block of another allocator, use after `fini`) throws — a defect.
 *
 * Example:
 *
 * ```ts
 * const vram = Result.getOrThrow(Buddy.make(256 * 1024 * 1024)) // 4 KiB chunks
 * const r = vram.alloc({ size: 3 * 4096, contiguous: true, topdown: true })
 * if (Result.isSuccess(r)) vram.free(r.success, { cleared: true })
 * ```
 *
 * Deviations from the kernel (documented, deliberate): bad input is a typed `Invalid` (the kernel
 * mixes `-EINVAL` and `BUG_ON`); a range-restricted search picks the lowest-address fitting block
 * and honours the clear preference through split blocks (the kernel's DFS skips split blocks when
 * `CLEAR_ALLOCATION` is set); the force-merge fallback uses an index of free mixed pairs instead
 * of scanning every free block.
 *
 * @since 0.1.0
 */
import { Invalid, NoSpace } from "@drmkit/core"
import { Result } from "effect"
import * as A from "./internal/buddy-alloc.ts"
import * as M from "./internal/buddy-math.ts"
import { allocOrders, checkAlloc } from "./internal/buddy-request.ts"
import { FreeIndex } from "./internal/buddy-tree.ts"

// Hot-path bindings copied once (imported bindings can be getter calls under tsx/CJS interop).
const { carve, exactRange, give, tryHarder } = A
const { badInt, ceilPow2, floorPow2, isPow2, log2 } = M
const succeed = Result.succeed
const fail = Result.fail
const NIL = -1
const FREE = 0
const ALLOCATED = 2
type Accounting = A.Accounting

/**
 * One allocated block (`struct drm_buddy_block`): `[offset, offset + size)`, `size = chunkSize <<
 * order`. Read-only to callers; give it back with {@link BuddyAllocator.free}.
 *
 * @since 0.1.0
 * @category models
 */
export interface BuddyBlock {
  readonly offset: number
  readonly size: number
  readonly order: number
  /** `drm_buddy_block_is_clear`: the memory is known to be zeroed. */
  readonly clear: boolean
}

/**
 * Options of {@link BuddyAllocator.alloc} — the arguments and `DRM_BUDDY_*_ALLOCATION` flags of
 * `drm_buddy_alloc_blocks()`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AllocOptions {
  /** Bytes; a multiple of the chunk size. Rounded up to `minBlockSize` (then trimmed back). */
  readonly size: number
  /** Smallest block, i.e. alignment of every returned block; a power of two ≥ chunk size. */
  readonly minBlockSize?: number
  /** Start of the allowed range (bytes, chunk aligned; default 0). */
  readonly start?: number
  /** End of the allowed range, exclusive (default: the allocator size). */
  readonly end?: number
  /** `DRM_BUDDY_RANGE_ALLOCATION`; defaults to true when `[start, end)` is narrower than the whole. */
  readonly range?: boolean
  /** `DRM_BUDDY_TOPDOWN_ALLOCATION`: prefer the highest free blocks (ignored with `range`, as in the kernel). */
  readonly topdown?: boolean
  /** `DRM_BUDDY_CONTIGUOUS_ALLOCATION`: one range — round up to a power of two, then trim. */
  readonly contiguous?: boolean
  /** `DRM_BUDDY_CLEAR_ALLOCATION`: prefer cleared blocks (falls back to dirty ones). */
  readonly clear?: boolean
  /** `DRM_BUDDY_TRIM_DISABLE`: keep the rounded-up size. */
  readonly trimDisable?: boolean
}

/**
 * Result of {@link BuddyAllocator.fini} (`drm_buddy_fini` WARNs instead).
 *
 * @since 0.1.0
 * @category models
 */
export interface FiniReport {
  readonly clean: boolean
  /** Bytes still allocated. */
  readonly leaked: number
}

const WHAT = "drm_buddy"
const invalid = (what: string, reason: string, value: unknown) => fail(new Invalid({ what, reason, value }))

/** A handle on an allocated block: the block id plus the generation it was handed out at. */
class Handle implements BuddyBlock {
  readonly offset: number
  readonly size: number
  readonly order: number
  readonly clear: boolean
  /** @internal */ readonly owner: BuddyAllocator
  /** @internal */ readonly id: number
  /** @internal */ readonly gen: number

  constructor(owner: BuddyAllocator, ix: FreeIndex, id: number) {
    const s = ix.s
    this.owner = owner
    this.id = id
    this.gen = s.gen[id] as number
    this.offset = s.off[id] as number
    this.order = s.ord[id] as number
    this.size = s.size(id)
    this.clear = s.clr[id] === 1
  }
}

/**
 * A buddy allocator instance (`struct drm_buddy`). Create with {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export class BuddyAllocator {
  /** Managed bytes (`mm->size`, rounded down to the chunk size). */
  readonly size: number
  /** Smallest block (`mm->chunk_size`). */
  readonly chunkSize: number
  /** Order of the largest root (`mm->max_order`). */
  readonly maxOrder: number
  private readonly roots: ReadonlyArray<number>
  private readonly ix: FreeIndex
  private readonly acc: Accounting
  private finished = false

  /** @internal use {@link make} */
  constructor(size: number, chunkSize: number) {
    this.size = size
    this.chunkSize = chunkSize
    this.maxOrder = log2(size) - log2(chunkSize)
    this.ix = new FreeIndex(this.maxOrder, chunkSize)
    this.acc = { avail: size }
    const roots: Array<number> = []
    for (let offset = 0, left = size; left > 0; ) {
      const rootSize = floorPow2(left)
      const root = this.ix.s.make(NIL, log2(rootSize / chunkSize), offset, 0)
      this.ix.markFree(root)
      roots.push(root)
      offset += rootSize
      left -= rootSize
    }
    this.roots = roots
  }

  /** Free bytes (`mm->avail`). */
  get avail(): number {
    return this.acc.avail
  }

  /** Free bytes known to be zeroed (`mm->clear_avail`). */
  get clearAvail(): number {
    return this.ix.clearAvail
  }

  /** Number of roots (`mm->n_roots`, the popcount of the size in chunks). */
  get rootCount(): number {
    return this.roots.length
  }

  private live(): void {
    if (this.finished) throw new Error("drm_buddy: BUG: allocator used after fini")
  }

  private handles(ids: ReadonlyArray<number>): Array<BuddyBlock> {
    const out: Array<BuddyBlock> = new Array(ids.length)
    for (let i = 0; i < ids.length; i++) out[i] = new Handle(this, this.ix, ids[i] as number)
    return out
  }

  /**
   * Models `drm_buddy_alloc_blocks()`. Fails with `Invalid` for bad arguments (state unchanged)
   * and `NoSpace` (`-ENOSPC`) when it does not fit (state unchanged too).
   */
  alloc(opts: AllocOptions): Result.Result<Array<BuddyBlock>, Invalid | NoSpace> {
    this.live()
    const bad = checkAlloc(opts, this.chunkSize, this.size)
    if (bad !== undefined) return fail(bad)
    const start = opts.start ?? 0
    const end = opts.end ?? this.size
    const minBlock = opts.minBlockSize ?? this.chunkSize
    const contiguous = opts.contiguous === true
    const range = opts.range ?? (start > 0 || end < this.size)
    if (start + opts.size === end) {
      if (start % minBlock !== 0 || end % minBlock !== 0) {
        return invalid("start/end", `exact range must be aligned to minBlockSize ${minBlock}`, { start, end })
      }
      const out = exactRange(this.ix, this.acc, this.roots, start, opts.size, false)
      return out.ok ? succeed(this.handles(out.blocks)) : fail(this.noSpace(opts.size))
    }
    let size = opts.size
    let min = minBlock
    if (contiguous) min = size = ceilPow2(size)
    else if (size % min !== 0) size = Math.ceil(size / min) * min
    if (log2(size) - log2(this.chunkSize) > this.maxOrder || size > this.size) {
      if (contiguous && !range) return this.tryHarder(opts.size, minBlock)
      return invalid("size", "rounded size exceeds the largest block", { size: opts.size, minBlockSize: minBlock })
    }
    const blocks = allocOrders(this.ix, this.acc, this.chunkSize, size, min, start, end, range, opts)
    if (blocks === undefined) {
      return contiguous && !range ? this.tryHarder(opts.size, minBlock) : fail(this.noSpace(opts.size))
    }
    if (opts.trimDisable !== true && size !== opts.size) {
      const last = blocks.pop() as number
      const s = this.ix.s
      carve(
        this.ix,
        this.acc,
        last,
        s.off[last] as number,
        (s.off[last] as number) + s.size(last) - (size - opts.size),
        blocks
      )
    }
    return succeed(this.handles(blocks))
  }

  private noSpace(requested: number): NoSpace {
    return new NoSpace({ what: WHAT, requested, available: this.acc.avail })
  }

  /** `__alloc_contig_try_harder`: a contiguous range made of a free block plus its neighbours. */
  private tryHarder(size: number, minBlock: number): Result.Result<Array<BuddyBlock>, NoSpace> {
    const ids = tryHarder(this.ix, this.acc, this.roots, size, minBlock)
    return ids === undefined ? fail(this.noSpace(size)) : succeed(this.handles(ids))
  }

  /**
   * Models `drm_buddy_block_trim()`: keeps `[start, start + newSize)` of one allocated block and
   * frees the rest. Returns the blocks now making up the allocation, ascending; `block` itself is
   * no longer valid unless it is returned unchanged.
   */
  trim(block: BuddyBlock, newSize: number, start?: number): Result.Result<Array<BuddyBlock>, Invalid> {
    this.live()
    const b = this.own(block)
    const s = this.ix.s
    const off = s.off[b] as number
    const bsize = s.size(b)
    const at = start ?? off
    if (badInt(newSize) || newSize === 0 || newSize % this.chunkSize !== 0 || newSize > bsize) {
      return invalid("newSize", `must be a positive multiple of ${this.chunkSize} <= ${bsize}`, newSize)
    }
    if (badInt(at) || at < off || at % this.chunkSize !== 0 || at + newSize > off + bsize) {
      return invalid("start", "must be chunk aligned and keep the range inside the block", at)
    }
    if (newSize === bsize) return succeed([block])
    const out: Array<number> = []
    carve(this.ix, this.acc, b, at, at + newSize, out)
    return succeed(this.handles(out))
  }

  /** Validates a handle: ours, still allocated, same generation; else a defect. */
  private own(block: BuddyBlock): number {
    if (!(block instanceof Handle) || block.owner !== this)
      throw new Error("drm_buddy: BUG: block of another allocator")
    const s = this.ix.s
    if (s.gen[block.id] !== block.gen || s.st[block.id] !== ALLOCATED) {
      throw new Error("drm_buddy: BUG: block is not allocated")
    }
    return block.id
  }

  /**
   * Models `drm_buddy_free_list()`: gives blocks back, marking them clear (`DRM_BUDDY_CLEARED`)
   * or dirty, and coalesces buddies of the same clear state.
   */
  free(blocks: Iterable<BuddyBlock>, opts: { readonly cleared?: boolean } = {}): void {
    this.live()
    const list = Array.isArray(blocks) ? (blocks as ReadonlyArray<BuddyBlock>) : [...blocks]
    for (const b of list) this.own(b)
    const cleared = opts.cleared === true ? 1 : 0
    const s = this.ix.s
    for (const x of list) {
      const id = (x as Handle).id
      if (s.st[id] !== ALLOCATED || s.gen[id] !== (x as Handle).gen)
        throw new Error("drm_buddy: BUG: block freed twice")
      s.clr[id] = cleared
      give(this.ix, this.acc, id)
    }
  }

  /** Models `drm_buddy_free_block()`: gives one block back, keeping its clear bit. */
  freeBlock(block: BuddyBlock): void {
    this.live()
    give(this.ix, this.acc, this.own(block))
  }

  /** Free blocks per order, largest first (`drm_buddy_print`). */
  freeBlocksByOrder(): Array<{ readonly order: number; readonly blocks: number; readonly clear: number }> {
    const out = []
    for (let o = this.maxOrder; o >= 0; o--) {
      const clear = this.ix.tree(1, o).size
      out.push({ order: o, blocks: this.ix.tree(0, o).size + clear, clear })
    }
    return out
  }

  private view(b: number): BuddyBlock {
    const s = this.ix.s
    return { offset: s.off[b] as number, size: s.size(b), order: s.ord[b] as number, clear: s.clr[b] === 1 }
  }

  /** All free blocks in offset order (for checks and debugging). */
  freeBlocks(): Array<BuddyBlock> {
    const out: Array<BuddyBlock> = []
    for (let o = 0; o <= this.maxOrder; o++) {
      for (const c of [0, 1]) for (const b of this.ix.freeIds(c, o)) out.push(this.view(b))
    }
    return out.sort((a, b) => a.offset - b.offset)
  }

  /** Root blocks (`mm->roots`), free or not. */
  rootBlocks(): Array<BuddyBlock & { readonly free: boolean }> {
    return this.roots.map((r) => ({ ...this.view(r), free: this.ix.s.st[r] === FREE }))
  }

  /**
   * Models `drm_buddy_fini()`: force-merges every free pair and reports whether every root is
   * whole again. The allocator is unusable afterwards.
   */
  fini(): FiniReport {
    this.live()
    const s = this.ix.s
    for (const r of this.roots) {
      let merged = true
      while (s.st[r] !== FREE && merged) merged = this.ix.forceMerge(s.off[r] as number, s.end(r), s.ord[r] as number)
    }
    this.finished = true
    const whole = this.roots.every((r) => s.st[r] === FREE)
    return { clean: whole && this.acc.avail === this.size, leaked: this.size - this.acc.avail }
  }
}

/**
 * Models `drm_buddy_init()`: manages `size` bytes (rounded down to `chunkSize`) in chunks of
 * `chunkSize` (a power of two ≥ 4 KiB, default 4 KiB). `Invalid` when `size < chunkSize`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (size: number, chunkSize = 4096): Result.Result<BuddyAllocator, Invalid> => {
  if (!isPow2(chunkSize) || chunkSize < 4096) return invalid("chunkSize", "must be a power of two >= 4096", chunkSize)
  if (badInt(size) || size < chunkSize) return invalid("size", `must be an integer >= ${chunkSize}`, size)
  return succeed(new BuddyAllocator(Math.floor(size / chunkSize) * chunkSize, chunkSize))
}
