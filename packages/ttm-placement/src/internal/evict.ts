/**
 * Eviction — models `ttm_bo_evict_alloc` on top of `ttm_lru_walk_for_evict`: a trylock-only walk
 * first; if it made no progress and the evictor holds a ww ticket, ticket walks repeat while each
 * evicts something. Only one blocking ticket lock per walk; `Deadlock` there ends the walk as
 * `NoSpace` (so validate reports `NoMemory`), `Already` skips the BO. Victims are filtered per
 * §2.3 (pinned, `evictionValuable`, still in this manager); zombies are reclaimed instead of moved.
 * Also `ttm_bo_evict_first` (evict-all): the LRU head, a blocking lock without a ticket.
 */
import { Busy, type Interrupted, NoSpace } from "@drmkit/core"
import { Effect } from "effect"
import { Bo } from "../BufferObject.ts"
import type { Device, OperationCtx } from "../Device.ts"
import { MAX_BO_PRIORITY, type Place } from "../Placement.ts"
import type { Resource } from "../Resource.ts"
import type { ResourceManager } from "../ResourceManager.ts"
import { type MoveError, moveTo, purge } from "./move.ts"
import { memSpace, requestOf, track } from "./placement.ts"
import {
  type Held,
  isIdle,
  lock,
  lockInterruptible,
  lockingTicket,
  type Ticket,
  trylock,
  unlock,
  waitIdle
} from "./resv.ts"
import { reapLocked } from "./zombie.ts"

interface Walk {
  readonly dev: Device
  readonly man: ResourceManager
  readonly place: Place
  readonly evictor: Bo
  readonly ctx: OperationCtx
  ticket: Ticket | undefined
  evicted: number
  res: Resource | undefined
}

type Step = "skip" | "progress" | NoSpace

/** The BO that owns `res`, if it is still its resource. */
const boOf = (res: Resource): Bo | undefined =>
  res.owner instanceof Bo && res.owner.resource === res ? res.owner : undefined

/** A locked victim; `own` when we took the lock (not the caller's shared resv). */
type Locked = { readonly held: Held; readonly own: boolean }

/** Trylock, or reuse the caller's held shared resv under `allowResEvict` (`ttm_lru_walk_trylock`). */
const tryLockVictim = (w: Walk, bo: Bo): Effect.Effect<Locked | undefined> =>
  Effect.map(trylock(bo.resv), (h) => {
    if (h !== undefined) return { held: h, own: true }
    const mine = w.ctx.held
    if (w.ctx.allowResEvict && mine !== undefined && mine.target === bo.resv) return { held: mine, own: false }
    return undefined
  })

/** Trylock first; in a ticket walk, one blocking ticket lock (`ttm_lru_walk_ticketlock`). */
const lockVictim = (w: Walk, bo: Bo): Effect.Effect<Locked | "skip" | "deadlock", Interrupted> =>
  Effect.flatMap(tryLockVictim(w, bo), (quick): Effect.Effect<Locked | "skip" | "deadlock", Interrupted> => {
    if (quick !== undefined) return Effect.succeed(quick)
    const ticket = w.ticket
    if (ticket === undefined) return Effect.succeed("skip" as const)
    // `dma_resv_lock_interruptible` when the context is interruptible: a signal ends the walk.
    const locking = w.ctx.interruptible ? lockInterruptible(bo.resv, ticket) : lock(bo.resv, ticket)
    return Effect.flatMap(Effect.result(locking), (r): Effect.Effect<Locked | "skip" | "deadlock", Interrupted> => {
      if (r._tag === "Failure") {
        if (r.failure._tag === "Interrupted") return Effect.fail(r.failure)
        return Effect.succeed(r.failure._tag === "Deadlock" ? ("deadlock" as const) : ("skip" as const))
      }
      w.ticket = undefined
      return Effect.succeed({ held: r.success, own: true })
    })
  })

const SKIP: Effect.Effect<Step> = Effect.succeed("skip")

/** `ttm_bo_evict`: to the driver's evict placement (empty: purge), moving with eviction allowed. */
export const evictBo = (dev: Device, held: Held, bo: Bo, ctx: OperationCtx): Effect.Effect<Step, MoveError> =>
  Effect.suspend(() => {
    const placement = dev.funcs.evictFlags(bo)
    if (placement.length === 0) {
      if (!isIdle(bo.resv) && ctx.noWaitGpu) return SKIP
      return Effect.map(waitIdle(bo.resv, "bookkeep", ctx.interruptible), (): Step => {
        purge(dev, bo)
        return "progress"
      })
    }
    return Effect.flatMap(memSpace(dev, held, bo, placement, ctx), (to): Effect.Effect<Step, MoveError> => {
      if (to instanceof NoSpace) return Effect.succeed(to)
      return Effect.map(moveTo(dev, held, bo, to, true, ctx), (): Step => {
        dev.stats.evictions++
        return "progress"
      })
    })
  })

/** `ttm_bo_evict_cb`: the per-victim policy. */
const processVictim = (w: Walk, bo: Bo, held: Held): Effect.Effect<Step, MoveError> => {
  if (bo.pinCount > 0 || !w.dev.funcs.evictionValuable(bo, w.place, w.dev)) return SKIP
  if (w.ctx.noWaitGpu && !isIdle(bo.resv)) return SKIP
  if (bo.deleted) {
    return Effect.map(waitIdle(bo.resv, "bookkeep", w.ctx.interruptible), (): Step => {
      reapLocked(w.dev, bo)
      return "progress"
    })
  }
  return evictBo(w.dev, held, bo, w.ctx).pipe(Effect.catchTag("Busy", () => SKIP))
}

const visit = (w: Walk, res: Resource): Effect.Effect<Step | "deadlock", MoveError> => {
  const bo = boOf(res)
  if (bo === undefined || bo === w.evictor || res.where !== "lru") return SKIP
  return Effect.flatMap(lockVictim(w, bo), (l): Effect.Effect<Step | "deadlock", MoveError> => {
    if (l === "skip" || l === "deadlock") return Effect.succeed(l)
    return Effect.ensuring(
      bo.resource === res ? processVictim(w, bo, l.held) : SKIP,
      l.own ? unlock(l.held) : Effect.void
    )
  })
}

/** After each eviction: try the evictor's allocation again; success ends the walk. */
const retryAlloc = (w: Walk): boolean => {
  w.evicted++
  const r = w.man.tryAlloc(requestOf(w.evictor), w.place)
  if (r === undefined) return false
  track(w.ctx, w.evictor, r)
  w.res = r
  return true
}

/** One LRU walk over priorities 0..3, head (oldest) first. Returns a `NoSpace` that ends it. */
const walk = (w: Walk): Effect.Effect<NoSpace | undefined, MoveError> => {
  const go = (
    prio: number,
    list: ReadonlyArray<Resource>,
    i: number
  ): Effect.Effect<NoSpace | undefined, MoveError> => {
    if (i >= list.length) {
      return prio + 1 < MAX_BO_PRIORITY ? Effect.suspend(() => go(prio + 1, w.man.lru.list(prio + 1), 0)) : DONE
    }
    return Effect.flatMap(visit(w, list[i] as Resource), (step) => {
      if (step === "deadlock") return Effect.succeed(new NoSpace({ what: w.man.name, requested: w.evictor.size }))
      if (step instanceof NoSpace) return Effect.succeed(step)
      if (step === "progress" && retryAlloc(w)) return DONE
      return go(prio, list, i + 1)
    })
  }
  return Effect.suspend(() => go(0, w.man.lru.list(0), 0))
}

const DONE: Effect.Effect<undefined> = Effect.succeed(undefined)

/**
 * Models `ttm_bo_evict_alloc`: evicts from `man` until the evictor's allocation for `place` fits. Returns the resource, `"busy"`
 * when eviction found nothing (try the next place), or `NoSpace` (end: validate reports NoMemory).
 */
export const evictAlloc = (
  dev: Device,
  man: ResourceManager,
  place: Place,
  evictor: Bo,
  ctx: OperationCtx
): Effect.Effect<Resource | NoSpace | "busy", MoveError> =>
  Effect.gen(function* () {
    const ticket = lockingTicket(evictor.resv)
    const w: Walk = { dev, man, place, evictor, ctx, ticket: undefined, evicted: 0, res: undefined }
    const first = yield* walk(w)
    if (w.res !== undefined) return w.res
    if (first !== undefined) return first
    // The trylock walk reports fits, not evictions: evicting too little still goes on to the
    // ticket walks (`if (lret || !ticket) goto out` in ttm_bo_evict_alloc).
    if (ticket === undefined) return "busy"
    do {
      w.evicted = 0
      w.ticket = ticket
      const r = yield* walk(w)
      if (w.res !== undefined) return w.res
      if (r !== undefined) return r
    } while (w.evicted > 0)
    return "busy"
  })

/** Takes the LRU head of `man`, priority 0 first (`ttm_resource_manager_first`). */
const lruFirst = (man: ResourceManager): { readonly bo: Bo; readonly res: Resource } | undefined => {
  for (const res of man.lru.all()) {
    const bo = boOf(res)
    if (bo !== undefined) return { bo, res }
  }
  return undefined
}

/** Reserves without a ticket: blocking (interruptible per ctx), or a trylock → `Busy` under `noWaitGpu`. */
const reserveNoTicket = (bo: Bo, ctx: OperationCtx): Effect.Effect<Held, Busy | Interrupted> => {
  if (ctx.noWaitGpu) {
    return Effect.flatMap(trylock(bo.resv), (h) =>
      h === undefined ? Effect.fail(new Busy({ what: bo.name, reason: "reservation is locked" })) : Effect.succeed(h)
    )
  }
  const locking = ctx.interruptible ? lockInterruptible(bo.resv) : lock(bo.resv)
  // Without a ticket there is no wound/die: Deadlock and Already cannot happen.
  return locking.pipe(Effect.catchTags({ Deadlock: (e) => Effect.die(e), Already: (e) => Effect.die(e) }))
}

/**
 * Models `ttm_bo_evict_first`: reserve the LRU head (no ticket), then evict it — a zombie is
 * waited for (`ttm_bo_wait_ctx`: `Busy` under `noWaitGpu`) and freed. `"empty"` when the LRU is
 * (`-ENOENT`), `"skip"` when the head moved while we waited for its lock (try again); a BO that
 * cannot be evicted fails (`NoSpace`, or `Busy` for a busy purge under `noWaitGpu`).
 */
export const evictFirst = (
  dev: Device,
  man: ResourceManager,
  ctx: OperationCtx
): Effect.Effect<"empty" | "skip" | "progress", MoveError | Busy | NoSpace> =>
  Effect.suspend(() => {
    const first = lruFirst(man)
    if (first === undefined) return Effect.succeed("empty" as const)
    const { bo, res } = first
    return Effect.flatMap(reserveNoTicket(bo, ctx), (held) =>
      Effect.ensuring(
        bo.resource !== res || res.where !== "lru" ? Effect.succeed("skip" as const) : evictLocked(dev, held, bo, ctx),
        unlock(held)
      )
    )
  })

const evictLocked = (
  dev: Device,
  held: Held,
  bo: Bo,
  ctx: OperationCtx
): Effect.Effect<"progress", MoveError | Busy | NoSpace> => {
  if (bo.deleted) {
    const busy = ctx.noWaitGpu && !isIdle(bo.resv)
    if (busy) return Effect.fail(new Busy({ what: bo.name, reason: "zombie still busy (noWaitGpu)" }))
    return Effect.map(waitIdle(bo.resv, "bookkeep", ctx.interruptible), () => {
      reapLocked(dev, bo)
      return "progress" as const
    })
  }
  return Effect.flatMap(evictBo(dev, held, bo, ctx), (step): Effect.Effect<"progress", Busy | NoSpace> => {
    if (step instanceof NoSpace) return Effect.fail(step)
    if (step === "skip") return Effect.fail(new Busy({ what: bo.name, reason: "busy (noWaitGpu)" }))
    return Effect.succeed(step)
  })
}
