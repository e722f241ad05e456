/**
 * GPU VA operations and the helpers that apply them.
 *
 * Models `struct drm_gpuva_op` and its variants (`drm_gpuva_op_map`, `_remap`, `_unmap`,
 * `_prefetch`), the non-splitting op generators `drm_gpuvm_prefetch_ops_create()` and
 * `drm_gpuvm_bo_unmap_ops_create()`, the apply helpers `drm_gpuva_map()`, `drm_gpuva_remap()`,
 * `drm_gpuva_unmap()` and `drm_gpuva_op_remap_to_unmap_range()`. The split/merge generators live
 * in {@link SplitMerge}.
 *
 * An op list must be applied in order, against the tree it was generated from; applying a stale
 * list is API misuse and dies (the kernel would corrupt its tree).
 *
 * @since 0.1.0
 */
import { Invalid, U64_MAX } from "@drmkit/core"
import { Result } from "effect"
import type { GemObject, GpuVa, MapArgs } from "./GpuVa.ts"
import { sumIs } from "./internal/u64.ts"
import { VaNode } from "./internal/VaTree.ts"
import type { VaSpace } from "./VaSpace.ts"

/**
 * Map `[addr, addr + range)` to `obj` at `offset` (`DRM_GPUVA_OP_MAP`). In `sm_map` it is the
 * request itself, always last and exactly once.
 *
 * @since 0.1.0
 * @category models
 */
export interface MapOp extends MapArgs {
  readonly _tag: "Map"
}

/**
 * Remove the existing VA `va` (`DRM_GPUVA_OP_UNMAP`, `struct drm_gpuva_op_unmap`). `keep`: the
 * request maps the same object with the same linear translation, so the driver may keep the
 * existing page-table entries and only add the missing ones.
 *
 * @since 0.1.0
 * @category models
 */
export interface UnmapOp {
  readonly _tag: "Unmap"
  readonly va: GpuVa
  readonly keep: boolean
}

/**
 * Split the existing VA `unmap.va`: remove it and re-insert the piece before the request (`prev`)
 * and/or the piece after it (`next`), never neither (`DRM_GPUVA_OP_REMAP`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RemapOp {
  readonly _tag: "Remap"
  readonly prev: MapArgs | undefined
  readonly next: MapArgs | undefined
  readonly unmap: { readonly va: GpuVa; readonly keep: boolean }
}

/**
 * Prefetch (migrate/populate) the whole VA `va` (`DRM_GPUVA_OP_PREFETCH`).
 *
 * @since 0.1.0
 * @category models
 */
export interface PrefetchOp {
  readonly _tag: "Prefetch"
  readonly va: GpuVa
}

/**
 * Any VA operation.
 *
 * @since 0.1.0
 * @category models
 */
export type Op = MapOp | RemapOp | UnmapOp | PrefetchOp

const die = (msg: string): never => {
  throw new Error(`gpuva: ${msg}`)
}

const node = (space: VaSpace, va: GpuVa): VaNode =>
  va instanceof VaNode && va.vm === space ? va : die("op refers to a VA that is not in this space (stale op list?)")

const fresh = (va: GpuVa | undefined): VaNode => {
  if (va === undefined) return new VaNode()
  if (!(va instanceof VaNode) || va.inserted) return die("pre-allocated VA is foreign or already inserted")
  return va
}

const place = (space: VaSpace, args: MapArgs, va: GpuVa | undefined): GpuVa => {
  const n = fresh(va).init(args.addr, args.range, args.obj, args.offset)
  if (!space.link(n)) die(`map [0x${n.addr.toString(16)}, ...) overlaps (stale op list?)`)
  return n
}

/** A remap piece must lie inside the VA it replaces, touching its start (prev) or end (next). */
const piece = (old: VaNode, args: MapArgs, va: GpuVa | undefined, atStart: boolean): VaNode => {
  const { addr, range } = args
  const ok =
    typeof addr === "bigint" &&
    typeof range === "bigint" &&
    range > 0n &&
    range <= old.range &&
    (atStart ? addr === old.addr : addr >= old.addr && sumIs(addr, range, old.end))
  if (!ok) die("remap piece outside the remapped VA")
  return fresh(va).initEnd(addr, range, atStart ? addr + range : old.end, args.obj, args.offset)
}

/**
 * `drm_gpuva_map()`: initialise `va` (a pre-allocated struct from {@link GpuVa.alloc}, or a new
 * one) from `op` and insert it. Only the mapping fields are set: flags and driver data are the
 * caller's (as `drm_gpuva_init_from_op()`). Dies if it overlaps (the op list is stale).
 *
 * @since 0.1.0
 * @category apply
 */
export const map = (space: VaSpace, op: MapArgs, va?: GpuVa): GpuVa => place(space, op, va)

/**
 * `drm_gpuva_remap()`: remove `op.unmap.va`, then insert `prev` and/or `next` (into the given
 * pre-allocated structs, or new ones). Returns the inserted pieces.
 *
 * @since 0.1.0
 * @category apply
 */
export const remap = (
  space: VaSpace,
  op: RemapOp,
  prev?: GpuVa,
  next?: GpuVa
): { readonly prev: GpuVa | undefined; readonly next: GpuVa | undefined } => {
  const old = node(space, op.unmap.va)
  const p = op.prev === undefined ? undefined : piece(old, op.prev, prev, true)
  const n = op.next === undefined ? undefined : piece(old, op.next, next, false)
  if (p !== undefined) {
    space.replace(old, p)
    if (n !== undefined) space.linkAfter(p, n)
  } else if (n !== undefined) space.replace(old, n)
  else space.unlink(old)
  return { prev: p, next: n }
}

/**
 * `drm_gpuva_unmap()`: remove the VA of an unmap op.
 *
 * @since 0.1.0
 * @category apply
 */
export const unmap = (space: VaSpace, op: UnmapOp): void => space.unlink(node(space, op.va))

/**
 * Applies one op with the default helpers (new VA structs; prefetch changes nothing).
 *
 * @since 0.1.0
 * @category apply
 */
export const apply = (space: VaSpace, op: Op): void => {
  switch (op._tag) {
    case "Map":
      place(space, op, undefined)
      return
    case "Remap":
      remap(space, op)
      return
    case "Unmap":
      unmap(space, op)
      return
    case "Prefetch":
      return
  }
}

/**
 * Applies a whole op list, in order.
 *
 * @since 0.1.0
 * @category apply
 */
export const applyAll = (space: VaSpace, ops: Iterable<Op>): void => {
  for (const op of ops) apply(space, op)
}

/**
 * `drm_gpuva_op_remap_to_unmap_range()`: the hole a remap leaves, `[prev ? prev.end : old.addr,
 * next ? next.addr : old.end)` — drivers unmap only this delta when page sizes allow.
 *
 * @since 0.1.0
 * @category getters
 */
export const remapToUnmapRange = (op: RemapOp): { readonly addr: bigint; readonly range: bigint } => {
  const old = op.unmap.va
  const start = op.prev === undefined ? old.addr : op.prev.addr + op.prev.range
  const end = op.next === undefined ? old.end : op.next.addr
  return { addr: start, range: end - start }
}

/**
 * `drm_gpuvm_prefetch_ops_create()`: one {@link PrefetchOp} per VA overlapping `[addr, addr +
 * range)`, whole VAs, no splitting, ascending. Like the kernel it does not check the range against
 * the space, so a range overlapping the reserved node yields a prefetch of the reserved node;
 * only malformed input (non-u64, zero length, u64 overflow) is `Invalid`.
 *
 * @since 0.1.0
 * @category generators
 */
export const prefetchOps = (
  space: VaSpace,
  addr: bigint,
  range: bigint
): Result.Result<ReadonlyArray<PrefetchOp>, Invalid> => {
  if (typeof addr !== "bigint" || typeof range !== "bigint" || addr < 0n || range <= 0n || addr + range > U64_MAX) {
    return Result.fail(new Invalid({ what: "prefetch range", reason: "must be a non-empty u64 range", value: range }))
  }
  const ops: Array<PrefetchOp> = []
  for (const va of space.iterate(addr, range)) ops.push({ _tag: "Prefetch", va })
  return Result.succeed(ops)
}

/**
 * `drm_gpuvm_bo_unmap_ops_create()`: one `Unmap(va, keep = false)` for every VA of `obj` in this
 * space, in insertion (link) order, no remaps — xe's `UNMAP_ALL`. Reads the per-object index, not
 * the whole tree.
 *
 * @since 0.1.0
 * @category generators
 */
export const boUnmapOps = (space: VaSpace, obj: GemObject): ReadonlyArray<UnmapOp> =>
  space.vasOf(obj).map((va) => ({ _tag: "Unmap", va, keep: false }))
