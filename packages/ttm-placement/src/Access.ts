/**
 * Access to BO contents on the GPU (resv held): writes publish a WRITE fence, reads (checksum,
 * readback) a READ fence, and every access first swaps a swapped-out BO back in — the "later
 * access" that `ttm_bo_populate` models. A BO without backing (purged) reads as zeros.
 *
 * @since 0.1.0
 */
import { checkInt, type Interrupted, Invalid, type RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import type { Bo } from "./BufferObject.ts"
import { opCtx } from "./Device.ts"
import { checksumCpu, checksum as gpuChecksum } from "./internal/checksum.ts"
import type { FenceLike } from "./internal/fence.ts"
import type { Extent } from "./internal/gpu.ts"
import { withOrphanCleanup } from "./internal/placement.ts"
import { addFence, fencesUpTo, type Held } from "./internal/resv.ts"
import { swapin } from "./internal/swap.ts"
import { assertHeld } from "./Validate.ts"

/**
 * The CPU reference of the GPU checksum kernel (for expected values).
 *
 * @since 0.1.0
 * @category checksums
 */
export const checksumOf = (bytes: Uint8Array): number =>
  checksumCpu(new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4)))

const slice = (extents: ReadonlyArray<Extent>, offset: number, size: number): Array<Extent> => {
  const out: Array<Extent> = []
  let at = 0
  for (const e of extents) {
    const from = Math.max(offset, at)
    const to = Math.min(offset + size, at + e.size)
    if (to > from) out.push({ buffer: e.buffer, offset: e.offset + from - at, size: to - from })
    at += e.size
  }
  return out
}

const ensureResident = (held: Held, bo: Bo): Effect.Effect<void, RestartSys | Interrupted> =>
  bo.swapped
    ? Effect.suspend(() => {
        const ctx = opCtx()
        return withOrphanCleanup(bo.device, ctx, swapin(bo.device, held, bo, ctx))
      })
    : Effect.void

/**
 * Writes `data` at byte `offset` (both multiples of 4) on the GPU queue, after every fence of the
 * BO; publishes the write as a WRITE fence and returns it.
 *
 * @since 0.1.0
 * @category access
 */
export const write = (
  held: Held,
  bo: Bo,
  data: Uint8Array,
  offset = 0
): Effect.Effect<FenceLike, Invalid | RestartSys | Interrupted> =>
  Effect.gen(function* () {
    yield* assertHeld(held, bo)
    const bad =
      checkInt("offset", offset, { multipleOf: 4, max: bo.size }) ??
      checkInt("data.length", data.length, { multipleOf: 4, max: bo.size - offset })
    if (bad !== undefined) return yield* bad
    yield* ensureResident(held, bo)
    const res = bo.resource
    if (res === undefined) return yield* new Invalid({ what: bo.name, reason: "has no backing (validate it first)" })
    const dst = slice(bo.device.storage.extents(res), offset, data.length)
    const fence = bo.device.storage.gpu.write(fencesUpTo(bo.resv, "bookkeep"), dst, data)
    yield* addFence(held, fence, "write")
    return fence
  })

/**
 * The GPU checksum of the whole BO (see {@link checksumOf}); waits for its KERNEL/WRITE fences.
 *
 * @since 0.1.0
 * @category access
 */
export const checksum = (held: Held, bo: Bo): Effect.Effect<number, RestartSys | Interrupted> =>
  Effect.gen(function* () {
    yield* assertHeld(held, bo)
    yield* ensureResident(held, bo)
    const res = bo.resource
    if (res === undefined) return checksumCpu(new Uint32Array(bo.size / 4))
    const job = gpuChecksum(bo.device.storage.gpu, fencesUpTo(bo.resv, "write"), bo.device.storage.extents(res))
    yield* addFence(held, job.fence, "read")
    return yield* Effect.promise(() => job.value)
  })

/**
 * Reads the whole BO back to the host (slow: for tests and demos).
 *
 * @since 0.1.0
 * @category access
 */
export const readback = (held: Held, bo: Bo): Effect.Effect<Uint8Array, RestartSys | Interrupted> =>
  Effect.gen(function* () {
    yield* assertHeld(held, bo)
    yield* ensureResident(held, bo)
    const res = bo.resource
    if (res === undefined) return new Uint8Array(bo.size)
    const job = bo.device.storage.gpu.readbackJob(fencesUpTo(bo.resv, "write"), bo.device.storage.extents(res))
    yield* addFence(held, job.fence, "read")
    return yield* Effect.promise(() => job.value)
  })
