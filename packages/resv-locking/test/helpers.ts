/**
 * Test helpers: the backoff loops of `kernel/locking/test-ww_mutex.c` (stress_inorder's "skip the
 * contended lock", stress_reorder's "move it to the front"), an ownership checker and a watchdog.
 */
import type { Deadlock } from "@drmkit/core"
import { DmaResv, type Exec, Scheduler, WwMutex } from "@drmkit/resv-locking"
import { Deferred, Effect, Exit, Fiber, Result } from "effect"

type M = WwMutex.WwMutex
type Ctx = WwMutex.AcquireCtx

/** Critical-section accounting: throws (a defect) the moment two tasks own one mutex. */
export class Ownership {
  readonly inside = new Map<M, number>()
  acquisitions = 0
  enter(m: M, task: number): void {
    const n = this.inside.get(m) ?? 0
    if (n !== 0 || m.ownerTask !== task) throw new Error(`double ownership of ${m.name}`)
    this.inside.set(m, 1)
    this.acquisitions++
  }
  leave(m: M): void {
    if (this.inside.get(m) !== 1) throw new Error(`leaving ${m.name} that was not entered`)
    this.inside.set(m, 0)
  }
}

/** Outcome counters of a stress run: only 0 / Deadlock / Already may appear. */
export interface Stats {
  txns: number
  backoffs: number
  maxRetries: number
  other: Array<string>
}

export const newStats = (): Stats => ({ txns: 0, backoffs: 0, maxRetries: 0, other: [] })

const tryLock = (m: M, ctx: Ctx) => Effect.result(WwMutex.lock(m, ctx))

/**
 * Locks `locks` in order with `ctx`; on Deadlock unlocks everything, slow-locks the contended
 * mutex and retries, skipping it (stress_inorder). Returns the number of backoffs.
 */
export const lockInorder = (ctx: Ctx, locks: ReadonlyArray<M>, stats: Stats): Effect.Effect<number> =>
  Effect.gen(function* () {
    let contended: M | undefined
    let retries = 0
    for (;;) {
      let failed: Deadlock | undefined
      for (const m of locks) {
        if (m === contended) continue
        const r = yield* tryLock(m, ctx)
        if (Result.isFailure(r)) {
          if (r.failure._tag === "Deadlock") {
            failed = r.failure
            contended = m
            break
          }
          stats.other.push(r.failure._tag)
        }
      }
      if (failed === undefined) return retries
      retries++
      stats.backoffs++
      yield* WwMutex.unlockAll(ctx)
      yield* Effect.orDie(WwMutex.lockSlow(contended as M, ctx))
    }
  })

/**
 * stress_reorder: on Deadlock unlock all, slow-lock the contended mutex and move it to the front
 * of the list (which is mutated). Returns the number of backoffs.
 */
export const lockReorder = (ctx: Ctx, order: Array<M>, stats: Stats): Effect.Effect<number> =>
  Effect.gen(function* () {
    let retries = 0
    let slowLocked: M | undefined
    for (;;) {
      let contended: M | undefined
      for (const m of order) {
        if (m === slowLocked) continue
        const r = yield* tryLock(m, ctx)
        if (Result.isFailure(r)) {
          if (r.failure._tag === "Deadlock") {
            contended = m
            break
          }
          stats.other.push(r.failure._tag)
        }
      }
      if (contended === undefined) return retries
      retries++
      stats.backoffs++
      yield* WwMutex.unlockAll(ctx)
      yield* Effect.orDie(WwMutex.lockSlow(contended, ctx))
      slowLocked = contended
      order.splice(order.indexOf(contended), 1)
      order.unshift(contended)
    }
  })

/** Deterministic PRNG for test workloads. */
export const rng = Scheduler.prng

/** Fisher-Yates with `rand`. */
export const shuffle = <T>(xs: Array<T>, rand: () => number): Array<T> => {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = xs[i] as T
    xs[i] = xs[j] as T
    xs[j] = t
  }
  return xs
}

/** `n` mutexes of `cls`. */
export const mutexes = (cls: WwMutex.WwClass, n: number, prefix = "m"): Array<M> =>
  Array.from({ length: n }, (_, i) => WwMutex.make(cls, `${prefix}${i}`))

/** Both algorithms, as the selftest runs every case for ww_class and wd_class. */
export const algorithms = ["wound-wait", "wait-die"] as const

export const classOf = (alg: (typeof algorithms)[number], name: string): WwMutex.WwClass =>
  alg === "wait-die" ? WwMutex.WwClass.waitDie(name) : WwMutex.WwClass.woundWait(name)

/**
 * Runs each list of transactions sequentially on its own fiber (all fibers concurrently) and waits
 * for all; `onFailure` counts the transactions that ended in a failure or interruption.
 */
export const runOnFibers = <T>(
  fibers: ReadonlyArray<ReadonlyArray<T>>,
  txn: (t: T) => Effect.Effect<unknown, unknown>,
  onFailure: () => void
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const body = (txns: ReadonlyArray<T>) =>
      Effect.forEach(txns, (t) =>
        Effect.tap(Effect.exit(txn(t)), (e) => Effect.sync(() => Exit.isFailure(e) && onFailure()))
      )
    yield* Fiber.joinAll(yield* Effect.forEach(fibers, (txns) => Effect.forkChild(body(txns))))
  })

/** A GEM-like object: a resv plus a reference count the exec must balance. */
export class Bo implements Exec.LockItem {
  readonly resv: DmaResv.DmaResv
  refs = 0
  readonly log: Array<string>
  constructor(name: string, log: Array<string> = [], resv?: DmaResv.DmaResv) {
    this.resv = resv ?? DmaResv.make(name)
    this.log = log
  }
  retain = () => {
    this.refs++
  }
  release = () => {
    this.refs--
    this.log.push(`put ${this.resv.name}`)
  }
}

/** The resv names of lock items, in order. */
export const names = (objs: ReadonlyArray<Exec.LockItem>) => objs.map((o) => o.resv.name)

/** Lets every runnable fiber make progress (a few scheduler rounds). */
export const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

/** Forks a fiber that inits a ctx (stamp order = fork order), locks `pre`, signals, then runs `then`. */
export const txn = <A, E>(
  cls: WwMutex.WwClass,
  pre: ReadonlyArray<WwMutex.WwMutex>,
  then: (ctx: WwMutex.AcquireCtx) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const ready = yield* Deferred.make<WwMutex.AcquireCtx>()
    const fiber = yield* Effect.forkChild(
      Effect.scoped(
        Effect.gen(function* () {
          const ctx = yield* WwMutex.acquireCtx(cls, { injection: false })
          for (const m of pre) yield* WwMutex.lock(m, ctx)
          yield* Deferred.succeed(ready, ctx)
          return yield* then(ctx)
        })
      )
    )
    const ctx = yield* Deferred.await(ready)
    return { fiber, ctx }
  })
