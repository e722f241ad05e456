/**
 * Whole-manager eviction and swapout — models `ttm_resource_manager_evict_all` (evict everything
 * evictable, then wait for the manager's pipelined move fences) and `ttm_bo_swapout` /
 * `ttm_device_swapout` (one LRU BO out to host memory, trylock only).
 *
 * @since 0.1.0
 */
import type { Busy, Interrupted, NoSpace, RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import { Bo } from "./BufferObject.ts"
import { type Device, type OperationCtx, opCtx } from "./Device.ts"
import { evictBo } from "./internal/evict.ts"
import { whenSignaled } from "./internal/fence.ts"
import { withOrphanCleanup } from "./internal/placement.ts"
import { lock, unlock } from "./internal/resv.ts"
import { swapoutOne } from "./internal/swap.ts"
import type { MemType } from "./Placement.ts"

/**
 * Evicts every unpinned BO of `memType` (locking each without a ticket), then waits for the
 * manager's last move fence. Returns how many were evicted (zombies reclaimed count too).
 *
 * @since 0.1.0
 * @category operations
 */
export const evictAll = (
  device: Device,
  memType: MemType,
  ctx: OperationCtx = opCtx()
): Effect.Effect<number, Busy | NoSpace | RestartSys | Interrupted> =>
  withOrphanCleanup(
    device,
    ctx,
    Effect.gen(function* () {
      const man = device.manager(memType)
      if (man === undefined) return 0
      let n = 0
      for (const res of man.lru.all()) {
        const bo = res.owner
        if (!(bo instanceof Bo) || bo.resource !== res || bo.pinCount > 0) continue
        const h = yield* lock(bo.resv).pipe(Effect.orDie)
        const step = yield* Effect.ensuring(
          bo.resource === res && bo.pinCount === 0 ? evictBo(device, h, bo, ctx) : Effect.succeed("skip" as const),
          unlock(h)
        )
        if (step === "progress") n++
      }
      const f = man.moveFence
      if (f !== undefined) yield* Effect.promise(() => whenSignaled(f))
      return n
    })
  )

/**
 * Swaps one LRU BO of the `use_tt` managers out to host memory (trylock only). Returns whether
 * one was swapped.
 *
 * @since 0.1.0
 * @category operations
 */
export const swapout = (device: Device, ctx: OperationCtx = opCtx()): Effect.Effect<boolean, RestartSys> =>
  withOrphanCleanup(device, ctx, swapoutOne(device, ctx))
