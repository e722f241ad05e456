/**
 * Staging of a bind array: bind ops → gpuva ops (against the tree as updated by the earlier ops
 * of the same array) → tree updates with pre-allocated VA structs and vm_bos, plus the page-table
 * ops of the whole array. Every mutation is journaled so a failure anywhere (NoMemory from the
 * allocator, a full page-table arena) unwinds to exactly the previous state — like xe's
 * `vm_bind_ioctl_ops_unwind()` and Nouveau's `nouveau_uvmm_sm_unwind()`.
 *
 * Removed VAs stay linked to their vm_bos until {@link Staged.commit}: unlinking may destroy a
 * vm_bo, which an unwind could not recreate without allocating.
 */
import type { NoMemory } from "@drmkit/core"
import type { PageTable } from "@drmkit/gpu"
import { Result } from "effect"
import type { Allocator } from "../Allocator.ts"
import { alloc as allocVa, Flags, type GemObject, type GpuVa, type MapArgs } from "../GpuVa.ts"
import * as Ops from "../Ops.ts"
import { worstCaseTables } from "../PageTables.ts"
import * as SplitMerge from "../SplitMerge.ts"
import type { VaSpace } from "../VaSpace.ts"
import type { BindObject, BindOp, MapFlags } from "../VmBind.ts"
import * as VmBo from "../VmBo.ts"

const PAGE = 4096n

/** Map flags of each VA created by a bind (remap pieces inherit them). */
const vaFlags = new WeakMap<GpuVa, MapFlags>()

/** The page-table backing of `[offset, offset + range)` of `obj` (NULL for sparse). */
export const backingOf = (obj: GemObject | null, offset: bigint, range: bigint): PageTable.Backing => {
  if (obj === null) return { _tag: "Null" }
  const f = (obj as BindObject).frames
  const first = Number(offset / PAGE)
  if (f._tag === "Contiguous") return { _tag: "Contiguous", baseFrame: f.baseFrame + first }
  const n = Number(range / PAGE)
  const src = f.frames
  const frames = ArrayBuffer.isView(src)
    ? (src as Uint32Array).subarray(first, first + n)
    : Array.from({ length: n }, (_, i) => src[first + i] as number)
  return { _tag: "Pages", frames }
}

const ptMap = (m: MapArgs, flags: MapFlags | undefined): PageTable.Op => ({
  _tag: "Map",
  va: m.addr,
  size: m.range,
  backing: backingOf(m.obj, m.offset, m.range),
  options: { writable: flags?.readOnly !== true, flags: flags?.pteFlags ?? 0 }
})

/** `[addr, end)` pieces of `[lo, hi)` not covered by the sorted disjoint `holes`. */
const subtract = (lo: bigint, hi: bigint, holes: ReadonlyArray<readonly [bigint, bigint]>): Array<[bigint, bigint]> => {
  const out: Array<[bigint, bigint]> = []
  let at = lo
  for (const [a, b] of holes) {
    if (a > at) out.push([at, a])
    if (b > at) at = b
  }
  if (at < hi) out.push([at, hi])
  return out
}

/** The journal and outputs of one staged bind array. */
export class Staged {
  readonly ptOps: Array<PageTable.Op> = []
  readonly removed: Array<GpuVa> = []
  readonly created: Array<GpuVa> = []
  readonly vmBos = new Set<VmBo.VmBo>()
  /** Objects whose pages the job's new PTEs point at (maps and prefetch rebinds). */
  readonly mapped = new Set<GemObject>()
  private readonly undo: Array<() => void> = []
  /** Hull of every touched address. */
  lo: bigint | undefined
  hi: bigint | undefined
  /** Worst-case page-table pages of the ops so far. */
  ptWorstCase = 0

  readonly space: VaSpace
  readonly vm: VmBo.VmLike
  readonly allocator: Allocator
  readonly lockOf: (obj: GemObject) => VmBo.GpuvaLock
  readonly levels: number
  constructor(
    space: VaSpace,
    vm: VmBo.VmLike,
    allocator: Allocator,
    lockOf: (obj: GemObject) => VmBo.GpuvaLock,
    levels: number
  ) {
    this.space = space
    this.vm = vm
    this.allocator = allocator
    this.lockOf = lockOf
    this.levels = levels
  }

  private touch(addr: bigint, range: bigint): void {
    const end = addr + range
    if (this.lo === undefined || addr < this.lo) this.lo = addr
    if (this.hi === undefined || end > this.hi) this.hi = end
    this.ptWorstCase += worstCaseTables(range / PAGE, this.levels)
  }

  private pt(op: PageTable.Op, obj: GemObject | null = null): void {
    if (obj !== null) this.mapped.add(obj)
    this.ptOps.push(op)
    this.touch(op.va, op.size)
  }

  /** Inserts a VA for `m` from the pool, links it to `b` (if any), journals both. */
  private place(m: MapArgs, pool: Array<GpuVa>, b: VmBo.VmBo | undefined, flags: MapFlags | undefined): GpuVa {
    const va = Ops.map(this.space, m, pool.pop())
    if (m.obj === null) va.flags |= Flags.Sparse
    if (flags !== undefined) vaFlags.set(va, flags)
    if (b !== undefined) VmBo.link(va, b, this.lockOf(b.obj))
    this.created.push(va)
    this.undo.push(() => {
      if (m.obj !== null) VmBo.unlink(va, this.lockOf(m.obj))
      Result.getOrThrow(this.space.remove(va))
    })
    return va
  }

  /** Removes `va` from the tree (staying linked until commit), journaled. */
  private take(va: GpuVa): void {
    Result.getOrThrow(this.space.remove(va))
    this.removed.push(va)
    this.undo.push(() => {
      this.removed.pop()
      Result.getOrThrow(this.space.insert(va))
    })
  }

  /** Pre-allocates VA structs (worst case `n`). */
  private pool(n: number): Array<GpuVa> | NoMemory {
    const err = this.allocator.alloc("va", n)
    if (err !== undefined) return err
    return Array.from({ length: n }, allocVa)
  }

  /** Applies one remap: old VA out, pieces in (linked to the old VA's vm_bo). */
  private remap(op: Ops.RemapOp, pool: Array<GpuVa>): void {
    const old = op.unmap.va
    const b = VmBo.ofVa(old)
    const flags = vaFlags.get(old)
    const oldFlags = old.flags
    this.take(old)
    for (const piece of [op.prev, op.next]) {
      if (piece === undefined) continue
      const va = this.place(piece, pool, b, flags)
      va.flags = oldFlags
      va.priv = old.priv
    }
  }

  /** Stages one bind op. */
  add(op: BindOp): NoMemory | undefined {
    switch (op._tag) {
      case "Map":
        return this.addMap(op)
      case "Unmap":
        return this.addUnmap(op.addr, op.range)
      case "UnmapAll":
        for (const va of Ops.boUnmapOps(this.space, op.obj)) {
          this.take(va.va)
          this.pt({ _tag: "Unmap", va: va.va.addr, size: va.va.range })
        }
        return undefined
      case "Prefetch":
        return this.addPrefetch(op.addr, op.range)
    }
  }

  private addMap(op: Extract<BindOp, { _tag: "Map" }>): NoMemory | undefined {
    const req: MapArgs = { addr: op.addr, range: op.range, obj: op.obj, offset: op.offset }
    const steps = Result.getOrThrow(SplitMerge.smMapOps(this.space, req))
    const pool = this.pool(3)
    if (!Array.isArray(pool)) return pool
    let b: VmBo.VmBo | undefined
    if (op.obj !== null) {
      const pre = VmBo.create(this.vm, op.obj)
      if (!(pre instanceof VmBo.VmBo)) return pre
      const lock = this.lockOf(op.obj)
      const got = VmBo.obtainPrealloc(pre, lock)
      this.undo.push(() => void VmBo.put(got, lock))
      this.vmBos.add(got)
      b = got
    }
    const kept: Array<readonly [bigint, bigint]> = []
    for (const step of steps) {
      if (step._tag === "Unmap") {
        if (step.keep && (step.va.flags & Flags.Invalidated) === 0) kept.push([step.va.addr, step.va.end])
        this.take(step.va)
      } else if (step._tag === "Remap") {
        if (step.unmap.keep && (step.unmap.va.flags & Flags.Invalidated) === 0) {
          const h = Ops.remapToUnmapRange(step)
          kept.push([h.addr, h.addr + h.range])
        }
        this.remap(step, pool)
      } else if (step._tag === "Map") {
        this.place(step, pool, b, op.flags)
      }
    }
    if (b !== undefined) {
      const obtained = b
      VmBo.put(obtained, this.lockOf(obtained.obj))
      this.undo.push(() => void VmBo.get(obtained))
    }
    for (const [a, e] of subtract(op.addr, op.addr + op.range, kept)) {
      this.pt(ptMap({ addr: a, range: e - a, obj: op.obj, offset: op.offset + (a - op.addr) }, op.flags), op.obj)
    }
    return undefined
  }

  private addUnmap(addr: bigint, range: bigint): NoMemory | undefined {
    const steps = Result.getOrThrow(SplitMerge.smUnmapOps(this.space, addr, range))
    const pool = this.pool(2)
    if (!Array.isArray(pool)) return pool
    for (const step of steps) {
      if (step._tag === "Unmap") {
        this.take(step.va)
        this.pt({ _tag: "Unmap", va: step.va.addr, size: step.va.range })
      } else if (step._tag === "Remap") {
        const h = Ops.remapToUnmapRange(step)
        this.remap(step, pool)
        this.pt({ _tag: "Unmap", va: h.addr, size: h.range })
      }
    }
    return undefined
  }

  /** Prefetch: rebinds VAs whose backing was invalidated (eviction, zap); others are already bound. */
  private addPrefetch(addr: bigint, range: bigint): undefined {
    for (const { va } of Result.getOrThrow(Ops.prefetchOps(this.space, addr, range))) {
      if (va.obj === null || (va.flags & Flags.Invalidated) === 0 || va === this.space.reserved) continue
      va.flags &= ~Flags.Invalidated
      this.undo.push(() => void (va.flags |= Flags.Invalidated))
      this.pt(ptMap(va, vaFlags.get(va)), va.obj)
    }
    return undefined
  }

  /** Reverts every staged change, newest first. */
  unwind(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]?.()
    this.undo.length = 0
  }

  /** The point of no return: unlink removed VAs (may destroy vm_bos), add new extobjs. */
  commit(): void {
    for (const va of this.removed) if (va.obj !== null) VmBo.unlink(va, this.lockOf(va.obj))
    for (const b of this.vmBos) VmBo.extobjAdd(b)
    this.undo.length = 0
  }
}
