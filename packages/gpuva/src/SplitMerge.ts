/**
 * The split/merge state machine: which unmap, remap and map steps turn the current VA tree into
 * one where a request is mapped (or a range unmapped).
 *
 * Models `__drm_gpuvm_sm_map()` / `__drm_gpuvm_sm_unmap()` ("DOC: Split and Merge" in
 * `drm_gpuvm.c`) and their interpreters: callbacks (`drm_gpuvm_sm_map()` with `sm_step_map /
 * sm_step_remap / sm_step_unmap`), op lists (`drm_gpuvm_sm_map_ops_create()`,
 * `_sm_unmap_ops_create()`, `drm_gpuvm_madvise_ops_create()`) and the lock collector
 * (`drm_gpuvm_sm_map_exec_lock()`). One pure generator ({@link mapSteps}, {@link unmapSteps})
 * feeds all of them, so every mode sees the same sequence. The generator never modifies the tree.
 *
 * Rules (the code's, where the kernel-doc drifted):
 * - the VAs overlapping the request are visited in address order; a VA that only touches the
 *   request is not visited; at most one remap at each end, any number of unmaps between, the map
 *   last and exactly once (no "nothing to do" short-cut for an identical re-map);
 * - `keep` exactly when the existing VA has an object, it is the requested object, and both
 *   describe the same linear translation (`offset - addr` equal modulo 2^64); `smUnmap` never keeps;
 * - split pieces carry offsets arithmetically (mod 2^64), also for NULL objects;
 * - neighbours are never coalesced and `offset + range` is never checked against the object size.
 *
 * @since 0.1.0
 */
import type { Invalid } from "@drmkit/core"
import { Effect, Result } from "effect"
import type { GemObject, MapArgs } from "./GpuVa.ts"
import type { VaNode } from "./internal/VaTree.ts"
import type { MapOp, Op, RemapOp, UnmapOp } from "./Ops.ts"
import type { VaSpace } from "./VaSpace.ts"

/**
 * A map request (`struct drm_gpuvm_map_req`).
 *
 * @since 0.1.0
 * @category models
 */
export type MapRequest = MapArgs

/**
 * Which variant of the map generator: `"map"` (`sm_map`) or `"madvise"`
 * (`DRM_GPUVM_SM_MAP_OPS_FLAG_SPLIT_MADVISE`: split only NULL-object VAs at the request
 * boundaries, never unmap, emit a map only for split parts).
 *
 * @since 0.1.0
 * @category models
 */
export type MapMode = "map" | "madvise"

/**
 * Boundary check of a map request against `space`; `undefined` when valid.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkMap = (space: VaSpace, req: MapRequest): Invalid | undefined =>
  space.checkRange(req.addr, req.range, "map") ?? space.checkOffset(req.offset, "map.offset")

/**
 * Boundary check of an unmap range against `space`; `undefined` when valid.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkUnmap = (space: VaSpace, addr: bigint, range: bigint): Invalid | undefined =>
  space.checkRange(addr, range, "unmap")

const TWO64 = 1n << 64n

/** The part `[from, to)` of `va`, its offset carried modulo 2^64 (offsets are < 2^64, so one wrap at most). */
const piece = (va: VaNode, from: bigint, to: bigint): MapArgs => {
  let offset = va.offset
  if (from !== va.addr) {
    offset += from - va.addr
    if (offset >= TWO64) offset -= TWO64
  }
  return { addr: from, range: to - from, obj: va.obj, offset }
}

/** `(a.offset - a.addr) ≡ (b.offset - b.addr) (mod 2^64)`, for values in u64. */
const sameTranslation = (a: MapArgs, b: MapArgs): boolean => {
  const d = a.offset - a.addr - (b.offset - b.addr)
  return d === 0n || d === TWO64 || d === -TWO64
}

/** Drains a step generator into an array (a `for..of` loop: `Array.from` on a generator is ~4x slower in V8). */
const collect = (steps: Iterable<Op>): Array<Op> => {
  const out: Array<Op> = []
  for (const op of steps) out.push(op)
  return out
}

const mapOp = (addr: bigint, range: bigint, obj: GemObject | null, offset: bigint): MapOp => ({
  _tag: "Map",
  addr,
  range,
  obj,
  offset
})

/**
 * The step generator of `sm_map` (and madvise). Precondition: {@link checkMap} passed; the public
 * wrappers check it. Yields {@link Op}s in order; the successor of each visited VA is taken
 * before the step is yielded, so a callback consumer may apply each step immediately.
 *
 * @since 0.1.0
 * @category generators
 */
export function* mapSteps(space: VaSpace, req: MapRequest, mode: MapMode = "map"): Generator<Op, void, undefined> {
  const madvise = mode === "madvise"
  const reqEnd = req.addr + req.range
  let final: MapOp | undefined = madvise ? undefined : mapOp(req.addr, req.range, req.obj, req.offset)
  let va = space.tree.firstOverlap(req.addr, reqEnd)
  while (va !== null && va.addr < reqEnd) {
    const following: VaNode | null = va.next
    if (madvise && va.obj !== null) {
      if (va.end >= reqEnd) break
      va = following
      continue
    }
    const keep = va.obj !== null && va.obj === req.obj && sameTranslation(va, req)
    const before = va.addr < req.addr
    const after = va.end > reqEnd
    if (!before && !after) {
      if (!madvise) yield { _tag: "Unmap", va, keep } satisfies UnmapOp
    } else {
      yield {
        _tag: "Remap",
        prev: before ? piece(va, va.addr, req.addr) : undefined,
        next: after ? piece(va, reqEnd, va.end) : undefined,
        unmap: { va, keep }
      } satisfies RemapOp
      if (madvise) {
        if (before && !after && va.end < reqEnd) {
          yield mapOp(req.addr, va.end - req.addr, null, 0n)
        } else if (!before && va.addr > req.addr) {
          yield mapOp(va.addr, reqEnd - va.addr, null, 0n)
          return
        } else {
          final = mapOp(req.addr, req.range, req.obj, req.offset)
        }
      }
    }
    // VAs are disjoint: one reaching the request's end is the last to overlap (saves touching the next)
    if (after || va.end === reqEnd) break
    va = following
  }
  if (final !== undefined) yield final
}

/**
 * The step generator of `sm_unmap`. Precondition: {@link checkUnmap} passed.
 *
 * @since 0.1.0
 * @category generators
 */
export function* unmapSteps(space: VaSpace, addr: bigint, range: bigint): Generator<Op, void, undefined> {
  const end = addr + range
  let va = space.tree.firstOverlap(addr, end)
  while (va !== null && va.addr < end) {
    const following: VaNode | null = va.next
    const before = va.addr < addr
    const after = va.end > end
    if (before || after) {
      yield {
        _tag: "Remap",
        prev: before ? piece(va, va.addr, addr) : undefined,
        next: after ? piece(va, end, va.end) : undefined,
        unmap: { va, keep: false }
      } satisfies RemapOp
    } else {
      yield { _tag: "Unmap", va, keep: false } satisfies UnmapOp
    }
    if (va.end >= end) break
    va = following
  }
}

/**
 * `drm_gpuvm_sm_map_ops_create()`: the steps of mapping `req` as a list. An identical re-map is
 * `[Unmap(keep), Map]`, never empty.
 *
 * @since 0.1.0
 * @category list mode
 */
export const smMapOps = (space: VaSpace, req: MapRequest): Result.Result<ReadonlyArray<Op>, Invalid> => {
  const bad = checkMap(space, req)
  return bad === undefined ? Result.succeed(collect(mapSteps(space, req))) : Result.fail(bad)
}

/**
 * `drm_gpuvm_sm_unmap_ops_create()`: the steps of unmapping `[addr, addr + range)` as a list
 * (empty when nothing overlaps).
 *
 * @since 0.1.0
 * @category list mode
 */
export const smUnmapOps = (space: VaSpace, addr: bigint, range: bigint): Result.Result<ReadonlyArray<Op>, Invalid> => {
  const bad = checkUnmap(space, addr, range)
  return bad === undefined ? Result.succeed(collect(unmapSteps(space, addr, range))) : Result.fail(bad)
}

/**
 * `drm_gpuvm_madvise_ops_create()`: split NULL-object VAs at the request boundaries so an
 * attribute can be applied to exactly the requested part. Object-backed VAs are skipped, nothing
 * is unmapped, `keep` is always false, and a map is emitted only where a split happened: the
 * request itself when one VA contained a boundary and reached to the other end, otherwise the
 * split VA's part inside the request with `obj = null, offset = 0` (at most two maps).
 *
 * @since 0.1.0
 * @category list mode
 */
export const madviseOps = (space: VaSpace, req: MapRequest): Result.Result<ReadonlyArray<Op>, Invalid> => {
  const bad = checkMap(space, req)
  return bad === undefined ? Result.succeed(collect(mapSteps(space, req, "madvise"))) : Result.fail(bad)
}

/**
 * Step callbacks (`struct drm_gpuvm_ops`' `sm_step_map / sm_step_remap / sm_step_unmap`). A
 * callback returning anything but `undefined` stops the walk and that value becomes the error
 * (the kernel's non-zero return).
 *
 * @since 0.1.0
 * @category callback mode
 */
export interface Callbacks<E> {
  readonly onMap: (op: MapOp) => E | undefined
  readonly onRemap: (op: RemapOp) => E | undefined
  readonly onUnmap: (op: UnmapOp) => E | undefined
}

const drive = <E>(steps: Iterable<Op>, cb: Omit<Callbacks<E>, "onMap"> & Partial<Callbacks<E>>): E | undefined => {
  for (const op of steps) {
    const r =
      op._tag === "Map"
        ? cb.onMap?.(op)
        : op._tag === "Remap"
          ? cb.onRemap(op)
          : op._tag === "Unmap"
            ? cb.onUnmap(op)
            : undefined
    if (r !== undefined) return r
  }
  return undefined
}

/**
 * `drm_gpuvm_sm_map()`: feeds the steps of mapping `req` to the callbacks, in order. Callbacks may
 * apply each step at once (see {@link Ops.map} etc.).
 *
 * @since 0.1.0
 * @category callback mode
 */
export const smMap = <E>(
  space: VaSpace,
  req: MapRequest,
  callbacks: Callbacks<E>
): Result.Result<void, Invalid | E> => {
  const bad = checkMap(space, req)
  if (bad !== undefined) return Result.fail(bad)
  const err = drive(mapSteps(space, req), callbacks)
  return err === undefined ? Result.void : Result.fail(err)
}

/**
 * `drm_gpuvm_sm_unmap()`: feeds the steps of unmapping `[addr, addr + range)` to the callbacks
 * (`onMap` is not needed).
 *
 * @since 0.1.0
 * @category callback mode
 */
export const smUnmap = <E>(
  space: VaSpace,
  addr: bigint,
  range: bigint,
  callbacks: Omit<Callbacks<E>, "onMap">
): Result.Result<void, Invalid | E> => {
  const bad = checkUnmap(space, addr, range)
  if (bad !== undefined) return Result.fail(bad)
  const err = drive(unmapSteps(space, addr, range), callbacks)
  return err === undefined ? Result.void : Result.fail(err)
}

/**
 * Effectful step callbacks, for drivers whose steps wait or fail in Effect (a VM_BIND job's
 * page-table staging).
 *
 * @since 0.1.0
 * @category callback mode
 */
export interface EffectCallbacks<E, R> {
  readonly onMap: (op: MapOp) => Effect.Effect<void, E, R>
  readonly onRemap: (op: RemapOp) => Effect.Effect<void, E, R>
  readonly onUnmap: (op: UnmapOp) => Effect.Effect<void, E, R>
}

const driveEffect = <E, R>(steps: Iterable<Op>, cb: EffectCallbacks<E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function* () {
    for (const op of steps) {
      if (op._tag === "Map") yield* cb.onMap(op)
      else if (op._tag === "Remap") yield* cb.onRemap(op)
      else if (op._tag === "Unmap") yield* cb.onUnmap(op)
    }
  })

/**
 * {@link smMap} with effectful callbacks; fails with `Invalid` before any callback on bad input.
 *
 * @since 0.1.0
 * @category callback mode
 */
export const smMapEffect = <E, R>(
  space: VaSpace,
  req: MapRequest,
  callbacks: EffectCallbacks<E, R>
): Effect.Effect<void, Invalid | E, R> =>
  Effect.suspend((): Effect.Effect<void, Invalid | E, R> => {
    const bad = checkMap(space, req)
    return bad === undefined ? driveEffect(mapSteps(space, req), callbacks) : Effect.fail(bad)
  })

/**
 * {@link smUnmap} with effectful callbacks.
 *
 * @since 0.1.0
 * @category callback mode
 */
export const smUnmapEffect = <E, R>(
  space: VaSpace,
  addr: bigint,
  range: bigint,
  callbacks: Omit<EffectCallbacks<E, R>, "onMap">
): Effect.Effect<void, Invalid | E, R> =>
  Effect.suspend((): Effect.Effect<void, Invalid | E, R> => {
    const bad = checkUnmap(space, addr, range)
    return bad === undefined
      ? driveEffect(unmapSteps(space, addr, range), { ...callbacks, onMap: () => Effect.void })
      : Effect.fail(bad)
  })

/**
 * `drm_gpuvm_sm_map_exec_lock()` / `_sm_unmap_exec_lock()`'s collector: the objects whose VAs the
 * steps would remap or unmap (to lock them all before any mutation), plus the requested object
 * (to lock and reserve fence slots on), without duplicates, in first-touched order.
 *
 * @since 0.1.0
 * @category generators
 */
export const objectsTouched = (steps: Iterable<Op>, req?: MapRequest): ReadonlyArray<GemObject> => {
  const seen = new Set<GemObject>()
  if (req?.obj) seen.add(req.obj)
  for (const op of steps) {
    const va = op._tag === "Remap" ? op.unmap.va : op._tag === "Unmap" ? op.va : undefined
    if (va?.obj) seen.add(va.obj)
  }
  return [...seen]
}
