/**
 * The VA space of one GPU VM: bounds, the kernel-reserved node and the tree of mappings.
 *
 * Models the VA-manager half of `struct drm_gpuvm` (`drm_gpuvm_init()`, `drm_gpuvm_range_valid()`,
 * `drm_gpuva_insert()` / `drm_gpuva_remove()`, `drm_gpuva_find*()`, `drm_gpuvm_interval_empty()`,
 * `drm_gpuvm_for_each_va_range()`), plus a per-object index of VAs (the kernel keeps one per vm_bo,
 * linked with `drm_gpuva_link()`; here it is maintained on insert/remove so "every mapping of an
 * object in this VM" is not a scan). Everything is synchronous (a hot structure); fallible calls
 * return a `Result` (lift it with `Effect.fromResult` inside an Effect program).
 *
 * Divergences from the kernel, on purpose:
 * - zero-length ranges and addresses/ranges not aligned to `pageSize` are `Invalid` (the kernel
 *   leaves both to drivers);
 * - an overlapping insert is `Invalid` with reason `"overlaps ..."` (the kernel's `-EEXIST`);
 * - {@link VaSpace.findPrev} / {@link VaSpace.findNext} return only the truly adjacent VA (see there).
 *
 * @since 0.1.0
 */
import { Invalid, U64_MAX } from "@drmkit/core"
import { Result } from "effect"
import type { GemObject, GpuVa } from "./GpuVa.ts"
import { EXACT } from "./internal/u64.ts"
import { type ObjList, VaNode, VaTree } from "./internal/VaTree.ts"

/**
 * Construction parameters (`drm_gpuvm_init()`'s `start_offset`, `range`, `reserve_offset`,
 * `reserve_range`), plus the VM's page size that every address, range and offset must be a
 * multiple of.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly name?: string
  readonly start: bigint
  readonly range: bigint
  /** Start of the kernel-reserved node (default: none). */
  readonly reserveOffset?: bigint
  readonly reserveRange?: bigint
  /** A power of two (default `1n`: arbitrary units, as in the kernel-doc examples). */
  readonly pageSize?: bigint
}

const hex = (x: bigint): string => `0x${x.toString(16)}`
/** Module-local copy: a hot path should not go through the import binding (a getter under CJS transpilers such as tsx). */
const MAX: bigint = U64_MAX
const isU64 = (x: unknown): x is bigint => typeof x === "bigint" && x >= 0n && x <= MAX
/** `x % p === 0n` for a u64 `x` and a power-of-two `p` (in doubles below 2^52: no bigint allocated). */
const aligned = (x: bigint, p: bigint): boolean => (x < EXACT ? Number(x) % Number(p) === 0 : x % p === 0n)

/**
 * A VM's VA space. Create with {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export class VaSpace {
  readonly name: string
  readonly start: bigint
  readonly range: bigint
  /** `start + range`. */
  readonly end: bigint
  readonly pageSize: bigint
  /** `Number(start)` / `Number(end)`, for the allocation-free fast path of {@link rangeValid}. */
  private readonly startNum: number
  private readonly endNum: number
  /** The kernel-reserved node, if any: in the tree, never removable, never touched by split/merge. */
  readonly reserved: GpuVa | undefined
  /** @internal */
  readonly tree = new VaTree()
  private readonly byObj = new Map<GemObject, ObjList>()
  /** The last VA linked: where the next insert most likely goes. */
  private hint: VaNode | null = null

  /** @internal use {@link make} */
  constructor(o: Required<Omit<Options, "reserveOffset" | "reserveRange">> & { reserved: VaNode | undefined }) {
    this.name = o.name
    this.start = o.start
    this.range = o.range
    this.end = o.start + o.range
    this.startNum = Number(this.start)
    this.endNum = Number(this.end)
    this.pageSize = o.pageSize
    this.reserved = o.reserved
    if (o.reserved !== undefined) this.link(o.reserved)
  }

  /** Number of mappings, not counting the reserved node. */
  get count(): number {
    return this.tree.size - (this.reserved === undefined ? 0 : 1)
  }

  /**
   * `drm_gpuvm_range_valid()`: `addr + range` does not overflow u64, lies inside the space and does
   * not overlap the reserved node. Pure predicate on well-typed input; see {@link checkRange}.
   */
  rangeValid(addr: bigint, range: bigint): boolean {
    if (addr < EXACT && range < EXACT && this.end < EXACT) {
      // every value below 2^52: exact in doubles, no bigint allocated
      const a = Number(addr)
      const e = a + Number(range)
      if (a < this.startNum || e > this.endNum) return false
      const r = this.reserved
      return r === undefined || !(a < Number(r.end) && Number(r.addr) < e)
    }
    const end = addr + range
    if (end > MAX) return false
    if (addr < this.start || end > this.end) return false
    const r = this.reserved
    return r === undefined || !(addr < r.end && r.addr < end)
  }

  /**
   * Full boundary check of a request: u64 `bigint`s, non-zero, aligned to the page size, and
   * {@link rangeValid}. Returns the {@link Invalid} or `undefined`.
   */
  checkRange(addr: unknown, range: unknown, what = "range"): Invalid | undefined {
    if (!isU64(addr)) return new Invalid({ what: `${what}.addr`, reason: "must be a u64 bigint", value: addr })
    if (!isU64(range)) return new Invalid({ what: `${what}.range`, reason: "must be a u64 bigint", value: range })
    if (range === 0n) return new Invalid({ what: `${what}.range`, reason: "must be non-zero", value: range })
    const p = this.pageSize
    if (!aligned(addr, p) || !aligned(range, p)) {
      return new Invalid({
        what,
        reason: `must be aligned to the page size ${hex(p)}`,
        value: `${hex(addr)}+${hex(range)}`
      })
    }
    if (!(addr < EXACT && range < EXACT) && addr + range > MAX)
      return new Invalid({ what, reason: "end overflows u64", value: `${hex(addr)}+${hex(range)}` })
    if (!this.rangeValid(addr, range)) {
      return new Invalid({
        what,
        reason: `outside [${hex(this.start)}, ${hex(this.end)}) or overlaps the reserved node`,
        value: `${hex(addr)}+${hex(range)}`
      })
    }
    return undefined
  }

  /** Checks an object offset: a u64 `bigint` aligned to the page size. */
  checkOffset(offset: unknown, what = "offset"): Invalid | undefined {
    if (!isU64(offset)) return new Invalid({ what, reason: "must be a u64 bigint", value: offset })
    if (!aligned(offset, this.pageSize)) {
      return new Invalid({ what, reason: `must be aligned to the page size ${hex(this.pageSize)}`, value: hex(offset) })
    }
    return undefined
  }

  /**
   * `drm_gpuva_insert()`: validates `va` ({@link checkRange}, offset) and inserts it. Overlapping an
   * existing VA (the kernel's `-EEXIST`), an already inserted VA, or bad input → `Invalid`, tree
   * unchanged.
   */
  insert(va: GpuVa): Result.Result<GpuVa, Invalid> {
    if (!(va instanceof VaNode)) return Result.fail(new Invalid({ what: "va", reason: "not made by GpuVa.make/alloc" }))
    if (va.vm !== null) return Result.fail(new Invalid({ what: "va", reason: "already inserted" }))
    const bad = this.checkRange(va.addr, va.range, "va") ?? this.checkOffset(va.offset, "va.offset")
    if (bad !== undefined) return Result.fail(bad)
    if (!this.link(va)) {
      const hit = this.tree.firstOverlap(va.addr, va.end) as VaNode
      return Result.fail(
        new Invalid({
          what: "va",
          reason: `overlaps [${hex(hit.addr)}, ${hex(hit.end)}) (EEXIST)`,
          value: hex(va.addr)
        })
      )
    }
    return Result.succeed(va)
  }

  /** @internal insert without validation; `false` (nothing changed) if it overlaps. */
  link(va: VaNode): boolean {
    const h = this.hint
    // finger: a map applied right after its remaps lands next to the last placed piece
    if (h !== null && h.vm === this && h.end <= va.addr && (h.next === null || h.next.addr >= va.end)) {
      this.tree.insertAfter(h, va)
    } else if (h !== null && h.vm === this && h.prev !== null && h.addr >= va.end && h.prev.end <= va.addr) {
      this.tree.insertAfter(h.prev, va)
    } else if (!this.tree.tryInsert(va)) return false
    this.adopt(va, null)
    return true
  }

  /** @internal `old` leaves the tree, `piece` (inside old's extent) takes its place. */
  replace(old: VaNode, piece: VaNode): void {
    this.tree.replace(old, piece)
    // adopt first: when the object is the same, its list (and map entry) never goes empty
    this.adopt(piece, piece.obj === old.obj ? old.objList : null)
    this.disown(old)
  }

  /** @internal `piece` goes right after `anchor` (remap's next piece after its prev piece). */
  linkAfter(anchor: VaNode, piece: VaNode): void {
    this.tree.insertAfter(anchor, piece)
    this.adopt(piece, piece.obj === anchor.obj ? anchor.objList : null)
  }

  /**
   * Marks `va` as ours and appends it to its object's list (`drm_gpuva_link()`'s list part);
   * `known` is that list when the caller has it at hand.
   */
  private adopt(va: VaNode, known: ObjList | null): void {
    va.vm = this
    this.hint = va
    const obj = va.obj
    if (obj === null) return
    const list = known ?? this.byObj.get(obj)
    va.objNext = null
    if (list === undefined) {
      va.objPrev = null
      const fresh: ObjList = { head: va, tail: va, count: 1 }
      va.objList = fresh
      this.byObj.set(obj, fresh)
      return
    }
    va.objList = list
    va.objPrev = list.tail
    if (list.tail !== null) list.tail.objNext = va
    list.tail = va
    if (list.head === null) list.head = va
    list.count++
  }

  private disown(va: VaNode): void {
    va.vm = null
    const list = va.objList
    if (list === null) return
    if (va.objPrev === null) list.head = va.objNext
    else va.objPrev.objNext = va.objNext
    if (va.objNext === null) list.tail = va.objPrev
    else va.objNext.objPrev = va.objPrev
    va.objPrev = null
    va.objNext = null
    va.objList = null
    if (--list.count === 0 && va.obj !== null) this.byObj.delete(va.obj)
  }

  /**
   * `drm_gpuva_remove()`. Removing the reserved node (the kernel WARNs and does nothing) or a VA
   * not in this space → `Invalid`, tree unchanged.
   */
  remove(va: GpuVa): Result.Result<GpuVa, Invalid> {
    if (!(va instanceof VaNode) || va.vm !== this) {
      return Result.fail(new Invalid({ what: "va", reason: "not in this VA space" }))
    }
    if (va === this.reserved)
      return Result.fail(new Invalid({ what: "va", reason: "the reserved node cannot be removed" }))
    this.unlink(va)
    return Result.succeed(va)
  }

  /** @internal */
  unlink(va: VaNode): void {
    this.tree.remove(va)
    this.disown(va)
  }

  /** `drm_gpuva_find_first()`: the lowest VA overlapping `[addr, addr + range)` (the reserved node included). */
  findFirst(addr: bigint, range: bigint): GpuVa | undefined {
    if (range === 0n) return undefined
    return this.tree.firstOverlap(addr, addr + range) ?? undefined
  }

  /** `drm_gpuva_find()`: the VA with exactly this `addr` and `range`. */
  find(addr: bigint, range: bigint): GpuVa | undefined {
    const va = this.findFirst(addr, range)
    return va !== undefined && va.addr === addr && va.range === range ? va : undefined
  }

  /**
   * The VA that ends exactly at `start` (the one containing address `start - 1`), or `undefined`
   * if that address is unmapped, outside the space or in the reserved node.
   *
   * Models `drm_gpuva_find_prev()` without its quirk: the kernel searches the two-unit window
   * `[start - 1, start]` and so returns a VA *beginning* at `start` when `start - 1` is free.
   */
  findPrev(start: bigint): GpuVa | undefined {
    if (start === 0n || !this.rangeValid(start - 1n, 1n)) return undefined
    const va = this.tree.floor(start - 1n)
    return va !== null && va.end >= start ? va : undefined
  }

  /**
   * The VA containing address `end` (normally the one starting there), or `undefined` if `end`
   * is unmapped, outside the space or in the reserved node.
   *
   * Models `drm_gpuva_find_next()` without its quirk: the kernel's window `[end, end + 1]` also
   * returns a VA beginning at `end + 1` across a one-unit hole.
   */
  findNext(end: bigint): GpuVa | undefined {
    if (!this.rangeValid(end, 1n)) return undefined
    const va = this.tree.floor(end)
    return va !== null && va.end > end ? va : undefined
  }

  /** `drm_gpuvm_interval_empty()`. */
  intervalEmpty(addr: bigint, range: bigint): boolean {
    return this.findFirst(addr, range) === undefined
  }

  /**
   * `drm_gpuvm_for_each_va_range_safe()`: VAs overlapping `[addr, addr + range)` in address order.
   * Safe: the successor is taken before a VA is yielded, so the consumer may remove it.
   */
  *iterate(addr: bigint = this.start, range: bigint = this.range): Generator<GpuVa, void, undefined> {
    if (range === 0n) return
    const end = addr + range
    let va = this.tree.firstOverlap(addr, end)
    while (va !== null && va.addr < end) {
      const following: VaNode | null = va.next
      yield va
      va = following
    }
  }

  /** Every VA in address order (the reserved node included). */
  [Symbol.iterator](): Iterator<GpuVa> {
    return this.iterate()
  }

  /** The VAs of `obj` in this space, in insertion order (the kernel's per-vm_bo gpuva list). */
  vasOf(obj: GemObject): ReadonlyArray<GpuVa> {
    const out: Array<GpuVa> = []
    for (let v = this.byObj.get(obj)?.head ?? null; v !== null; v = v.objNext) out.push(v)
    return out
  }

  /** Objects with at least one VA in this space. */
  objects(): ReadonlyArray<GemObject> {
    return [...this.byObj.keys()]
  }

  /** Structural self-check (balance, order, disjointness, links, object index); empty when sound. */
  check(): ReadonlyArray<string> {
    const errors = [...this.tree.check()]
    let indexed = 0
    for (const [obj, list] of this.byObj) {
      let n = 0
      let prev: VaNode | null = null
      for (let v = list.head; v !== null; v = v.objNext) {
        if (v.obj !== obj || v.vm !== this || v.objPrev !== prev || v.objList !== list)
          errors.push(`stale object list for ${obj.name}`)
        prev = v
        n++
      }
      if (n !== list.count || list.tail !== prev) errors.push(`bad object list count/tail for ${obj.name}`)
      indexed += n
    }
    let withObj = 0
    for (const va of this) if (va.obj !== null) withObj++
    if (withObj !== indexed) errors.push(`object index has ${indexed} VAs, tree ${withObj}`)
    return errors
  }
}

/**
 * `drm_gpuvm_init()`: validates the bounds (u64, non-zero, aligned, `start + range` within u64)
 * and the reserved node (aligned, inside the space) and creates the space.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Result.Result<VaSpace, Invalid> => {
  const pageSize = options.pageSize ?? 1n
  if (typeof pageSize !== "bigint" || pageSize <= 0n || (pageSize & (pageSize - 1n)) !== 0n) {
    return Result.fail(new Invalid({ what: "pageSize", reason: "must be a power-of-two bigint", value: pageSize }))
  }
  const { start, range } = options
  if (!isU64(start) || !isU64(range) || range === 0n || start + range > U64_MAX) {
    return Result.fail(
      new Invalid({ what: "range", reason: "start + range must be a non-empty u64 interval", value: range })
    )
  }
  if (start % pageSize !== 0n || range % pageSize !== 0n) {
    return Result.fail(new Invalid({ what: "range", reason: `must be aligned to the page size ${hex(pageSize)}` }))
  }
  const rr = options.reserveRange ?? 0n
  let reserved: VaNode | undefined
  if (rr !== 0n) {
    const ro = options.reserveOffset ?? start
    if (
      !isU64(ro) ||
      !isU64(rr) ||
      ro < start ||
      ro + rr > start + range ||
      ro % pageSize !== 0n ||
      rr % pageSize !== 0n
    ) {
      return Result.fail(new Invalid({ what: "reserve", reason: "must be an aligned range inside the space" }))
    }
    reserved = new VaNode().init(ro, rr, null, 0n)
  }
  return Result.succeed(new VaSpace({ name: options.name ?? "vm", start, range, pageSize, reserved }))
}

/**
 * {@link make} for tests and benches: throws the {@link Invalid} on bad options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (options: Options): VaSpace => Result.getOrThrow(make(options))
