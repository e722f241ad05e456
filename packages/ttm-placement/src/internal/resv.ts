/**
 * Adapter: the slice of `dma_resv` + ww_mutex that TTM uses, on @drmkit/resv-locking. All TTM
 * code goes through this file. Lock operations are Effects (ownership is per fiber); reading the
 * fence set without the lock (`dma_resv_for_each_fence_unlocked`) is synchronous.
 */
import type { Already, Deadlock, Interrupted, RestartSys } from "@drmkit/core"
import { type DmaFence, DmaResv, Held as HeldM, WwMutex } from "@drmkit/resv-locking"
import { Effect } from "effect"

/** Fence usages (`DMA_RESV_USAGE_*`). */
export type Usage = DmaResv.Usage
/** A reservation object. */
export type Resv = DmaResv.DmaResv
/** The held-lock witness. */
export type Held = HeldM.Held<DmaResv.DmaResv>
/** A ww acquire context (ticket). */
export type Ticket = WwMutex.AcquireCtx
/** A fence. */
export type Fence = DmaFence.DmaFence

/** `dma_resv_init`. */
export const make = (name: string): Resv => DmaResv.make(name)

/** `dma_resv_held` for a witness: locked by the running fiber. */
export const isHeld = (h: Held): boolean => HeldM.isHeld(h)

/** `dma_resv_trylock`: never blocks, no ticket. */
export const trylock = (r: Resv): Effect.Effect<Held | undefined> => DmaResv.trylock(r).pipe(Effect.orDie)

/** `dma_resv_lock(obj, ticket)`: `Already` (held by this ticket), `Deadlock` (back off). */
export const lock = (r: Resv, ticket?: Ticket): Effect.Effect<Held, Deadlock | Already> =>
  DmaResv.lock(r, ticket).pipe(Effect.catchTag("Invalid", (e) => Effect.die(e)))

/** `dma_resv_lock_interruptible(obj, ticket)`: also `Interrupted` when the task is signalled. */
export const lockInterruptible = (r: Resv, ticket?: Ticket): Effect.Effect<Held, Deadlock | Already | Interrupted> =>
  DmaResv.lockInterruptible(r, ticket).pipe(Effect.catchTag("Invalid", (e) => Effect.die(e)))

/** `dma_resv_unlock`. */
export const unlock = (h: Held): Effect.Effect<void> => DmaResv.unlock(h)

/** `dma_resv_locking_ctx`: the ticket holding `r`, if any. */
export const lockingTicket = (r: Resv): Ticket | undefined => DmaResv.lockingCtx(r)

/** `dma_resv_reserve_fences(1)` + `dma_resv_add_fence` (resv held). */
export const addFence = (h: Held, fence: Fence, usage: Usage): Effect.Effect<void> =>
  Effect.andThen(DmaResv.reserveFences(h, 1), DmaResv.addFence(h, fence, usage)).pipe(Effect.orDie)

/** Unsignalled fences with usage at most `usage` (`dma_resv_for_each_fence_unlocked`). */
export const fencesUpTo = (r: Resv, usage: Usage): Array<Fence> => {
  const out: Array<Fence> = []
  for (const f of DmaResv.iterUnlocked(r, usage)) if (!f.isSignaled) out.push(f)
  return out
}

/** `dma_resv_test_signaled`. */
export const isIdle = (r: Resv, usage: Usage = "bookkeep"): boolean => fencesUpTo(r, usage).length === 0

/** `dma_resv_wait_timeout` without a timeout. */
export const waitIdle = (r: Resv, usage: Usage = "bookkeep", interruptible = false): Effect.Effect<void, RestartSys> =>
  DmaResv.waitTimeout(r, usage, { interruptible }).pipe(
    Effect.catchTag("Invalid", (e) => Effect.die(e)),
    Effect.asVoid
  )

/** `dma_resv_copy_fences(dst, src)` (dst held). */
export const copyFences = (dst: Held, src: Resv): Effect.Effect<void> => DmaResv.copyFences(dst, src)

/** A scoped acquire context of the reservation class (`ww_acquire_init` … `ww_acquire_fini`). */
export const acquireTicket = () => WwMutex.acquireCtx(WwMutex.reservationWwClass)
