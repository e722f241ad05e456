/**
 * Whole-manager eviction and swapout — models `ttm_resource_manager_evict_all` (evict everything
 * evictable, then wait for the manager's pipelined move fences) and `ttm_bo_swapout` /
 * `ttm_device_swapout` (one LRU BO out to host memory, trylock only).
 *
 * @since 0.1.0
 */
import type { Busy, Interrupted, NoSpace, RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import { type Device, type OperationCtx, opCtx } from "./Device.ts"
import { evictFirst } from "./internal/evict.ts"
import { whenSignaled } from "./internal/fence.ts"
import { withOrphanCleanup } from "./internal/placement.ts"
import { swapoutOne } from "./internal/swap.ts"
import type { MemType } from "./Placement.ts"

/**
 * Evicts everything on the LRU of `memType` — models `ttm_resource_manager_evict_all`: repeat
 * `ttm_bo_evict_first` until the LRU is empty (`-ENOENT`), then wait for the manager's last move
 * fence. Each round takes the LRU head afresh (BOs placed meanwhile go too), reserves it with a
 * blocking lock and no ticket (`ctx.noWaitGpu`: trylock, `Busy`), and evicts it — a zombie is
 * waited for and freed instead. The first error ends it (e.g. `NoSpace`: nowhere to evict to);
 * what was evicted stays evicted. Pinned BOs are not on the LRU and stay. The kernel's own context
 * is uninterruptible and waits for the GPU: the default here. Returns how many BOs left
 * (zombies freed count too).
 *
 * @since 0.1.0
 * @category operations
 */
export const evictAll = (
  device: Device,
  memType: MemType,
  ctx: OperationCtx = opCtx({ interruptible: false })
): Effect.Effect<number, Busy | NoSpace | RestartSys | Interrupted> =>
  withOrphanCleanup(
    device,
    ctx,
    Effect.gen(function* () {
      const man = device.manager(memType)
      if (man === undefined) return 0
      let n = 0
      for (;;) {
        const step = yield* evictFirst(device, man, ctx)
        if (step === "empty") break
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
