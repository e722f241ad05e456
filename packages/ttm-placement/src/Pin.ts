/**
 * Pinning and bulk moves — models `ttm_bo_pin` / `ttm_bo_unpin` (counted, resv held; a pinned
 * resource leaves its LRU and bulk group for the unevictable list; the last unpin returns it to the
 * LRU tail and its group) and `ttm_bo_set_bulk_move` / `ttm_lru_bulk_move_tail`.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Bo } from "./BufferObject.ts"
import type { Held } from "./internal/resv.ts"
import { linkResource } from "./internal/state.ts"
import { addToLru, addUnevictable, BulkMove, joinBulk, leaveBulk } from "./Lru.ts"
import { assertHeld } from "./Validate.ts"

/**
 * `ttm_bo_pin`. Pin does not move: validate to the wanted place first.
 *
 * @since 0.1.0
 * @category operations
 */
export const pin = (held: Held, bo: Bo): Effect.Effect<void> =>
  Effect.andThen(
    assertHeld(held, bo),
    Effect.sync(() => {
      bo.pinCount++
      if (bo.pinCount === 1 && bo.resource !== undefined) addUnevictable(bo.device.unevictable, bo.resource)
    })
  )

/**
 * `ttm_bo_unpin`. Returns `false` (and does nothing) at pin count 0 — the kernel WARNs there.
 *
 * @since 0.1.0
 * @category operations
 */
export const unpin = (held: Held, bo: Bo): Effect.Effect<boolean> =>
  Effect.andThen(
    assertHeld(held, bo),
    Effect.sync(() => {
      if (bo.pinCount === 0) return false
      bo.pinCount--
      if (bo.pinCount === 0 && bo.resource !== undefined) linkResource(bo.device, bo, bo.resource)
      return true
    })
  )

/**
 * A new, empty bulk-move group (`ttm_lru_bulk_move_init`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeBulkMove = (): BulkMove => new BulkMove()

/**
 * `ttm_bo_set_bulk_move`: put `bo` in `bulk` (or take it out with `undefined`); resv held.
 *
 * @since 0.1.0
 * @category operations
 */
export const setBulkMove = (held: Held, bo: Bo, bulk: BulkMove | undefined): Effect.Effect<void> =>
  Effect.andThen(
    assertHeld(held, bo),
    Effect.sync(() => {
      if (bo.bulkMove === bulk) return
      bo.bulkMove = bulk
      const res = bo.resource
      if (res === undefined || res.where !== "lru") return
      const prio = res.lruPriority
      const man = bo.device.manager(res.memType)
      leaveBulk(res)
      if (bulk !== undefined) joinBulk(res, bulk)
      else if (man !== undefined) addToLru(man.lru, res, prio, undefined)
    })
  )

/**
 * `ttm_lru_bulk_move_tail`: the whole group to the LRU tails, O(1) per (type, priority).
 *
 * @since 0.1.0
 * @category operations
 */
export const bulkMoveTail = (bo: Bo, bulk: BulkMove): void => bulk.tail(bo.device.managers.map((m) => m?.lru))
