/**
 * Reserving BOs — models `ttm_bo_reserve` / `ttm_bo_unreserve`: lock a BO's reservation with a
 * trylock (`noWait` → `Busy`), a ww ticket (`Deadlock` → back off, `Already` → held by this ticket)
 * or plainly; unreserve bumps the BO to its LRU tail and unlocks.
 *
 * @since 0.1.0
 */
import { type Already, Busy, type Deadlock, type Interrupted, Invalid } from "@drmkit/core"
import { Effect, type Scope } from "effect"
import type { Bo } from "./BufferObject.ts"
import type { FenceLike } from "./internal/fence.ts"
import * as resv from "./internal/resv.ts"
import { bumpTail } from "./Lru.ts"

/**
 * A reservation and its held witness (`Held<DmaResv>`).
 *
 * @since 0.1.0
 * @category models
 */
export type { Held, Resv, Ticket, Usage } from "./internal/resv.ts"

/**
 * A ww acquire context of `reservation_ww_class` for the scope (`ww_acquire_init` …
 * `ww_acquire_fini`). Older tickets win contention (wait-die).
 *
 * @since 0.1.0
 * @category constructors
 */
export const acquireTicket: () => Effect.Effect<resv.Ticket, never, Scope.Scope> = resv.acquireTicket

/**
 * A reservation object, e.g. one shared by per-VM BOs (`dma_resv_init`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeResv = (name: string): resv.Resv => resv.make(name)

/**
 * Options of {@link reserve}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReserveOptions {
  /** Trylock only: `Busy` when someone holds it. */
  readonly noWait?: boolean
  /** Lock under this ww acquire context (`Deadlock` → back off, `Already` → held by it). */
  readonly ticket?: resv.Ticket
  /** A task signal while sleeping fails the lock with `Interrupted` (`-ERESTARTSYS` in TTM). */
  readonly interruptible?: boolean
}

/**
 * `ttm_bo_reserve(bo, interruptible, no_wait, ticket)`. `noWait` with a ticket is `Invalid`
 * (the kernel WARNs and returns `-EBUSY`).
 *
 * @since 0.1.0
 * @category operations
 */
export const reserve = (
  bo: Bo,
  o: ReserveOptions = {}
): Effect.Effect<resv.Held, Busy | Deadlock | Already | Invalid | Interrupted> => reserveResv(bo.resv, o)

/**
 * {@link reserve} for a bare reservation (e.g. a per-VM resv shared by several BOs).
 *
 * @since 0.1.0
 * @category operations
 */
export const reserveResv = (
  r: resv.Resv,
  o: ReserveOptions = {}
): Effect.Effect<resv.Held, Busy | Deadlock | Already | Invalid | Interrupted> =>
  Effect.suspend((): Effect.Effect<resv.Held, Busy | Deadlock | Already | Invalid | Interrupted> => {
    if (o.noWait && o.ticket !== undefined) {
      return Effect.fail(new Invalid({ what: "reserve", reason: "noWait together with a ticket" }))
    }
    if (o.noWait) {
      return Effect.flatMap(resv.trylock(r), (h) =>
        h === undefined ? Effect.fail(new Busy({ what: r.name, reason: "reservation is locked" })) : Effect.succeed(h)
      )
    }
    return o.interruptible ? resv.lockInterruptible(r, o.ticket) : resv.lock(r, o.ticket)
  })

/**
 * `ttm_bo_unreserve`: move to the LRU tail (unless pinned), then unlock.
 *
 * @since 0.1.0
 * @category operations
 */
export const unreserve = (held: resv.Held, bo: Bo): Effect.Effect<void> =>
  Effect.suspend(() => {
    const res = bo.resource
    const man = res === undefined ? undefined : bo.device.manager(res.memType)
    if (res !== undefined && man !== undefined && bo.pinCount === 0 && res.where === "lru") bumpTail(man.lru, res)
    return resv.unlock(held)
  })

/**
 * Reserves `bo` for the scope (plain lock, no ticket); unreserves when the scope closes.
 *
 * @since 0.1.0
 * @category operations
 */
export const reserved = (bo: Bo): Effect.Effect<resv.Held, never, Scope.Scope> =>
  Effect.acquireRelease(resv.lock(bo.resv).pipe(Effect.orDie), (h) => unreserve(h, bo))

/**
 * Runs `f` with `bo` reserved.
 *
 * @since 0.1.0
 * @category operations
 */
export const withReserved = <A, E>(bo: Bo, f: (held: resv.Held) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(resv.lock(bo.resv).pipe(Effect.orDie), (h) => Effect.onExit(restore(f(h)), () => unreserve(h, bo)))
  )

/**
 * `dma_resv_held` for a witness.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isHeld: (held: resv.Held) => boolean = resv.isHeld

/**
 * `dma_resv_add_fence(held, fence, usage)`: publish a fence (resv held).
 *
 * @since 0.1.0
 * @category fences
 */
export const addFence: (held: resv.Held, fence: FenceLike, usage: resv.Usage) => Effect.Effect<void> = resv.addFence

/**
 * `dma_resv_test_signaled` up to `usage` (default: every fence).
 *
 * @since 0.1.0
 * @category fences
 */
export const isIdle: (r: resv.Resv, usage?: resv.Usage) => boolean = resv.isIdle

/**
 * `dma_resv_unlock` without an LRU bump.
 *
 * @since 0.1.0
 * @category operations
 */
export const unlock: (held: resv.Held) => Effect.Effect<void> = resv.unlock

/**
 * Locks a bare reservation for the scope (no ticket), e.g. a per-VM resv while creating its BOs.
 *
 * @since 0.1.0
 * @category operations
 */
export const lockedResv = (r: resv.Resv): Effect.Effect<resv.Held, never, Scope.Scope> =>
  Effect.acquireRelease(resv.lock(r).pipe(Effect.orDie), resv.unlock)
