/**
 * The split/merge state machine: which unmap, remap and map steps turn the current VA tree into
 * one where a request is mapped (or a range unmapped).
 *
 * Models `__drm_gpuvm_sm_map()` / `__drm_gpuvm_sm_unmap()` ("DOC: Split and Merge" in
 * `drm_gpuvm.c`) and their interpreters: callbacks (`drm_gpuvm_sm_map()` with `sm_step_map /
 * sm_step_remap / sm_step_unmap`), op lists (`drm_gpuvm_sm_map_ops_create()`,
 * `_sm_unmap_ops_create()`, `drm_gpuvm_madvise_ops_create()`) and the lock collector
 * (`drm_gpuvm_sm_map_exec_lock()`). One internal state machine per request kind feeds a step
 * consumer (no generator and no intermediate list on the hot path); list mode, callback mode and
 * the {@link mapSteps} / {@link unmapSteps} iterables are all consumers of it, so every mode sees
 * the same sequence. The state machine never modifies the tree.
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
import { sameTranslation } from "./internal/u64.ts"
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

/** Module-local copies: hot paths should not go through namespace getters (as CJS transpilers such as tsx emit). */
const succeed = Result.succeed
const fail = Result.fail

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

const mapOp = (addr: bigint, range: bigint, obj: GemObject | null, offset: bigint): MapOp => ({
  _tag: "Map",
  addr,
  range,
  obj,
  offset
})

const remapOp = (va: VaNode, keep: boolean, from: bigint, to: bigint, before: boolean, after: boolean): RemapOp => ({
  _tag: "Remap",
  prev: before ? piece(va, va.addr, from) : undefined,
  next: after ? piece(va, to, va.end) : undefined,
  unmap: { va, keep }
})

/**
 * The consumer of a walk: receives each step in order; a result other than `undefined` stops the
 * walk and is returned by it (the kernel's non-zero `sm_step_*` return).
 */
type Emit<E> = (op: Op) => E | undefined

/**
 * The state machine of `sm_map` (and madvise), feeding `emit` (no generator, no intermediate list:
 * list mode, callback mode and the generators all run this). Precondition: {@link checkMap}
 * passed. The successor of each visited VA is read before its step is emitted, so a callback may
 * apply each step immediately.
 */
const walkMap = <E>(space: VaSpace, req: MapRequest, madvise: boolean, emit: Emit<E>): E | undefined => {
  const reqAddr = req.addr
  const reqEnd = reqAddr + req.range
  let final: MapOp | undefined = madvise ? undefined : mapOp(reqAddr, req.range, req.obj, req.offset)
  let va = space.tree.firstOverlap(reqAddr, reqEnd)
  while (va !== null && va.addr < reqEnd) {
    const following: VaNode | null = va.next
    if (madvise && va.obj !== null) {
      if (va.end >= reqEnd) break
      va = following
      continue
    }
    const keep = va.obj !== null && va.obj === req.obj && sameTranslation(va.offset, va.addr, req.offset, req.addr)
    const before = va.addr < reqAddr
    const after = va.end > reqEnd
    let r: E | undefined
    if (!before && !after) {
      if (!madvise) r = emit({ _tag: "Unmap", va, keep } satisfies UnmapOp)
    } else {
      r = emit(remapOp(va, keep, reqAddr, reqEnd, before, after))
      if (r === undefined && madvise) {
        if (before && !after && va.end < reqEnd) {
          r = emit(mapOp(reqAddr, va.end - reqAddr, null, 0n))
        } else if (!before && va.addr > reqAddr) {
          return emit(mapOp(va.addr, reqEnd - va.addr, null, 0n))
        } else {
          final = mapOp(reqAddr, req.range, req.obj, req.offset)
        }
      }
    }
    if (r !== undefined) return r
    // VAs are disjoint: one reaching the request's end is the last to overlap (saves touching the next)
    if (after || va.end === reqEnd) break
    va = following
  }
  return final === undefined ? undefined : emit(final)
}

/** The state machine of `sm_unmap` (see {@link walkMap}). Precondition: {@link checkUnmap} passed. */
const walkUnmap = <E>(space: VaSpace, addr: bigint, range: bigint, emit: Emit<E>): E | undefined => {
  const end = addr + range
  let va = space.tree.firstOverlap(addr, end)
  while (va !== null && va.addr < end) {
    const following: VaNode | null = va.next
    const before = va.addr < addr
    const after = va.end > end
    const r =
      before || after
        ? emit(remapOp(va, false, addr, end, before, after))
        : emit({ _tag: "Unmap", va, keep: false } satisfies UnmapOp)
    if (r !== undefined) return r
    if (va.end >= end) break
    va = following
  }
  return undefined
}

/**
 * List mode's consumer: steps go to one module-level scratch array, copied out at the end (an
 * exact-size copy instead of a growing array per call, and no closure per call). Walks never run
 * user code in list mode, so the scratch array cannot be re-entered.
 */
const scratch: Array<Op | undefined> = []
let scratchN = 0
const toScratch: Emit<never> = (op) => {
  scratch[scratchN++] = op
  return undefined
}
const takeScratch = (): Array<Op> => {
  const out = scratch.slice(0, scratchN) as Array<Op>
  for (let i = 0; i < scratchN; i++) scratch[i] = undefined // hold on to nothing
  scratchN = 0
  return out
}
const mapList = (space: VaSpace, req: MapRequest, madvise: boolean): Array<Op> => {
  scratchN = 0
  walkMap(space, req, madvise, toScratch)
  return takeScratch()
}
const unmapList = (space: VaSpace, addr: bigint, range: bigint): Array<Op> => {
  scratchN = 0
  walkUnmap(space, addr, range, toScratch)
  return takeScratch()
}

/**
 * The steps of `sm_map` (and madvise) as an iterable. Precondition: {@link checkMap} passed; the
 * public wrappers check it. The steps are computed against the tree as it is when iteration starts
 * and refer only to the VAs of that tree, so a consumer may apply each step as it arrives.
 *
 * @since 0.1.0
 * @category generators
 */
export function* mapSteps(space: VaSpace, req: MapRequest, mode: MapMode = "map"): Generator<Op, void, undefined> {
  yield* mapList(space, req, mode === "madvise")
}

/**
 * The steps of `sm_unmap` as an iterable. Precondition: {@link checkUnmap} passed.
 *
 * @since 0.1.0
 * @category generators
 */
export function* unmapSteps(space: VaSpace, addr: bigint, range: bigint): Generator<Op, void, undefined> {
  yield* unmapList(space, addr, range)
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
  return bad === undefined ? succeed(mapList(space, req, false)) : fail(bad)
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
  return bad === undefined ? succeed(unmapList(space, addr, range)) : fail(bad)
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
  return bad === undefined ? succeed(mapList(space, req, true)) : fail(bad)
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

/** Dispatches one step to its callback (`onMap` may be absent for unmap walks). */
const dispatch =
  <E>(cb: Omit<Callbacks<E>, "onMap"> & Partial<Callbacks<E>>): Emit<E> =>
  (op) =>
    op._tag === "Map"
      ? cb.onMap?.(op)
      : op._tag === "Remap"
        ? cb.onRemap(op)
        : op._tag === "Unmap"
          ? cb.onUnmap(op)
          : undefined

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
  const err = walkMap(space, req, false, dispatch(callbacks))
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
  const err = walkUnmap(space, addr, range, dispatch(callbacks))
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
