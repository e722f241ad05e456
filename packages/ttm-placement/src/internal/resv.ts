/**
 * Adapter: the slice of `dma_resv` + ww_mutex that TTM uses. All TTM code goes through this file,
 * so swapping the implementation (a local stand-in today, @drmkit/resv-locking's `DmaResv` once it
 * exports it) touches nothing else.
 */
import { Already, Deadlock, type RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import type { FenceLike } from "./fence.ts"
import { whenSignaled } from "./fence.ts"

/** Fence usages in the kernel's order (`DMA_RESV_USAGE_*`). */
export type Usage = "kernel" | "write" | "read" | "bookkeep"
const rank: Record<Usage, number> = { kernel: 0, write: 1, read: 2, bookkeep: 3 }

/** A ww acquire context (ticket); lower stamp = older. */
export interface Ticket {
  readonly stamp: number
  readonly name: string
}
let nextStamp = 1
/** `ww_acquire_init`. */
export const makeTicket = (name = "ticket"): Ticket => ({ stamp: nextStamp++, name })

/** The held-lock witness (`Held<DmaResv>`). */
export interface Held {
  readonly target: Resv
  readonly ticket: Ticket | undefined
}

/** A reservation object: a lock and a fence set. */
export class Resv {
  readonly name: string
  holder: Held | undefined = undefined
  readonly fences: Array<{ readonly fence: FenceLike; readonly usage: Usage }> = []
  readonly waiters = new Set<() => void>()
  constructor(name: string) {
    this.name = name
  }
  get isLocked(): boolean {
    return this.holder !== undefined
  }
}

/** `dma_resv_held`: `h` is the live witness of its resv. */
export const isHeld = (h: Held): boolean => h.target.holder === h

const take = (r: Resv, ticket: Ticket | undefined): Held => {
  const h: Held = { target: r, ticket }
  r.holder = h
  return h
}

/** `dma_resv_trylock`: never blocks, no ticket. */
export const trylock = (r: Resv): Held | undefined => (r.holder === undefined ? take(r, undefined) : undefined)

const waitRelease = (r: Resv): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const wake = () => {
      r.waiters.delete(wake)
      resume(Effect.void)
    }
    r.waiters.add(wake)
    return Effect.sync(() => r.waiters.delete(wake))
  })

/**
 * `dma_resv_lock(obj, ticket)` with wait-die: `Already` when the ticket holds it, `Deadlock` when a
 * younger ticket meets an older holder; otherwise waits. Without a ticket it just waits.
 */
export const lock = (r: Resv, ticket?: Ticket): Effect.Effect<Held, Deadlock | Already> =>
  Effect.suspend(() => {
    const h = r.holder
    if (h === undefined) return Effect.succeed(take(r, ticket))
    if (ticket !== undefined && h.ticket === ticket) return Effect.fail(new Already({ lock: r.name }))
    if (ticket !== undefined && h.ticket !== undefined && h.ticket.stamp < ticket.stamp) {
      return Effect.fail(new Deadlock({ lock: r.name }))
    }
    return Effect.andThen(waitRelease(r), lock(r, ticket))
  })

/** `dma_resv_unlock`. */
export const unlock = (h: Held): void => {
  const r = h.target
  if (r.holder !== h) return
  r.holder = undefined
  for (const w of [...r.waiters]) w()
}

/** Locks `r` (no ticket) for the scope. */
export const lockScoped = (r: Resv) => Effect.acquireRelease(lock(r), (h) => Effect.sync(() => unlock(h)))

/** `dma_resv_add_fence` (resv held; slots are reserved implicitly). Prunes signalled fences. */
export const addFence = (h: Held, fence: FenceLike, usage: Usage): void => {
  const fs = h.target.fences
  for (let i = fs.length - 1; i >= 0; i--) if (fs[i]?.fence.isSignaled) fs.splice(i, 1)
  if (!fence.isSignaled) fs.push({ fence, usage })
}

/** Unsignalled fences with usage at most `usage` (`dma_resv_for_each_fence`). */
export const fencesUpTo = (r: Resv, usage: Usage): Array<FenceLike> =>
  r.fences.filter((e) => rank[e.usage] <= rank[usage] && !e.fence.isSignaled).map((e) => e.fence)

/** `dma_resv_test_signaled`. */
export const isIdle = (r: Resv, usage: Usage = "bookkeep"): boolean => fencesUpTo(r, usage).length === 0

/** `dma_resv_wait_timeout` without a timeout; `RestartSys` is never raised by the stand-in. */
export const waitIdle = (r: Resv, usage: Usage = "bookkeep"): Effect.Effect<void, RestartSys> =>
  Effect.promise(() => Promise.all(fencesUpTo(r, usage).map(whenSignaled))).pipe(Effect.asVoid)

/** `dma_resv_copy_fences` into a fresh private resv (zombie individualisation). */
export const individualize = (r: Resv, name: string): Resv => {
  const n = new Resv(name)
  for (const e of r.fences) if (!e.fence.isSignaled) n.fences.push(e)
  return n
}
