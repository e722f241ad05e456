/**
 * BO lifetime — models `ttm_bo_init_validate` (create = validate from "no resource", counted in
 * bytesMoved), `ttm_bo_put`/`ttm_bo_release` (zombies while busy) and the delayed-delete flush.
 *
 * @since 0.1.0
 */
import { Invalid } from "@drmkit/core"
import { Effect } from "effect"
import { Bo, type BoOptions, checkOptions } from "./BufferObject.ts"
import { type Device, type OperationCtx, opCtx } from "./Device.ts"
import { type Held, isIdle, lock, unlock, waitIdle } from "./internal/resv.ts"
import { reapLocked, release as releaseBo } from "./internal/zombie.ts"
import { bumpTail } from "./Lru.ts"
import type { Placement } from "./Placement.ts"
import { checkPlacementFor, type ValidateError, validate } from "./Validate.ts"

/**
 * `ttm_bo_init_validate`: checks the options, makes the BO and validates it into `placement`
 * (contents start zeroed). With a shared `options.resv` pass the caller's witness in `held`;
 * otherwise the BO's resv is locked for the call. On failure the BO is dropped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const create = (
  device: Device,
  options: BoOptions,
  placement: Placement,
  o: { readonly held?: Held; readonly ctx?: OperationCtx } = {}
): Effect.Effect<Bo, ValidateError> =>
  Effect.gen(function* () {
    const bad = checkOptions(options) ?? checkPlacementFor(device, placement)
    if (bad !== undefined) return yield* bad
    const bo = new Bo(device, options)
    if (o.held !== undefined && o.held.target !== bo.resv) {
      return yield* new Invalid({ what: "create", reason: "held witness is not the BO's reservation" })
    }
    device.bos.add(bo)
    const own = o.held === undefined
    const held = o.held ?? (yield* lock(bo.resv).pipe(Effect.orDie))
    yield* validate(held, bo, placement, o.ctx ?? opCtx()).pipe(
      Effect.onError(() => Effect.sync(() => device.bos.delete(bo))),
      Effect.ensuring(own ? unlock(held) : Effect.void)
    )
    return bo
  })

/**
 * `ttm_bo_put` of the last reference: frees at once when idle and lockable, else a zombie that is
 * freed when its fences signal (and that evictors may reclaim meanwhile).
 *
 * @since 0.1.0
 * @category destructors
 */
export const release = (bo: Bo): Effect.Effect<void> => releaseBo(bo.device, bo)

/**
 * Waits for every zombie to become idle and frees it (`ttm_device_delayed_workqueue` flush).
 *
 * @since 0.1.0
 * @category destructors
 */
export const flushDelayed = (device: Device): Effect.Effect<number> =>
  Effect.gen(function* () {
    let n = 0
    for (const bo of [...device.bos]) {
      if (!bo.deleted || bo.destroyed) continue
      const h = yield* lock(bo.resv).pipe(Effect.orDie)
      yield* waitIdle(bo.resv).pipe(Effect.orDie)
      if (!bo.destroyed && isIdle(bo.resv)) {
        reapLocked(device, bo)
        n++
      }
      yield* unlock(h)
    }
    return n
  })

/**
 * Bumps a BO's resource to its LRU tail (what unreserve does), e.g. after use.
 *
 * @since 0.1.0
 * @category operations
 */
export const touch = (bo: Bo): void => {
  const res = bo.resource
  const man = res === undefined ? undefined : bo.device.manager(res.memType)
  if (res !== undefined && man !== undefined) bumpTail(man.lru, res)
}
