/**
 * The resv-locking demo scenario: fibers running drm_exec transactions over shared buffers with
 * deadlock injection on, then the same contended workload on bare ww_mutexes of a wait-die and a
 * wound-wait class. Returns what happened so the CLI can print it and a test can check it.
 */
import {
  type Already,
  CurrentTraceSink,
  collectingSink,
  type Deadlock,
  type Interrupted,
  type Invalid
} from "@drmkit/core"
import { DmaFence, DmaResv, Exec, Lockdep, WwMutex } from "@drmkit/resv-locking"
import { Effect, Random } from "effect"

/** Sizes of the scenario. */
export interface DemoConfig {
  readonly fibers: number
  readonly buffers: number
  readonly perTxn: number
  readonly txnsPerFiber: number
  readonly seed: number
}

/** Defaults: 8 fibers, 16 buffers, 4 per transaction. */
export const defaultConfig: DemoConfig = { fibers: 8, buffers: 16, perTxn: 4, txnsPerFiber: 250, seed: 42 }

/** Per-fiber outcome of the exec phase. */
export interface FiberStats {
  readonly fiber: number
  readonly transactions: number
  readonly backoffs: number
  readonly maxRetries: number
}

/** One backoff as the trace recorded it. */
export interface Backoff {
  readonly task: number | string | undefined
  readonly contended: unknown
  readonly retry: unknown
  readonly stamp: unknown
}

/** Outcome of the bare ww_mutex phase for one class. */
export interface WwStats {
  readonly algorithm: WwMutex.Algorithm
  readonly transactions: number
  readonly deadlocks: number
  readonly wounded: number
  readonly maxRetries: number
}

/** Everything the demo observed. */
export interface DemoResult {
  readonly exec: ReadonlyArray<FiberStats>
  /** Buffers whose dma_resv still has an unsignalled fence at the end (must be none). */
  readonly busyBuffers: ReadonlyArray<string>
  readonly backoffs: ReadonlyArray<Backoff>
  readonly ww: ReadonlyArray<WwStats>
}

const pick = (n: number, k: number) =>
  Effect.gen(function* () {
    const chosen = new Set<number>()
    while (chosen.size < k) chosen.add(yield* Random.nextIntBetween(0, n, { halfOpen: true }))
    return [...chosen]
  })

/** One fiber's exec transactions: lock 4 buffers, publish a write fence on each, release. */
const execFiber = (id: number, bos: ReadonlyArray<DmaResv.DmaResv>, cfg: DemoConfig) =>
  Effect.gen(function* () {
    const ring = DmaFence.contextAlloc(`ring${id}`)
    let backoffs = 0
    let maxRetries = 0
    for (let t = 0; t < cfg.txnsPerFiber; t++) {
      const objs = (yield* pick(cfg.buffers, cfg.perTxn)).map((i) => bos[i] as DmaResv.DmaResv)
      const retries = yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* Exec.make({ injection: true })
          yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, objs, 1))
          const job = DmaFence.make(ring)
          for (const bo of Exec.lockedObjects(exec)) yield* DmaResv.addFence(Exec.held(exec, bo), job, "write")
          yield* Effect.yieldNow // the "GPU job" is queued while the locks are held
          job.signal()
          return Exec.retries(exec)
        })
      )
      backoffs += retries
      maxRetries = Math.max(maxRetries, retries)
    }
    return { fiber: id, transactions: cfg.txnsPerFiber, backoffs, maxRetries }
  })

/** One transaction on bare ww_mutexes with the full backoff protocol (ww_mutex_lock_slow). */
const wwTransaction = (
  cls: WwMutex.WwClass,
  locks: ReadonlyArray<WwMutex.WwMutex>,
  stats: { deadlocks: number; wounded: number }
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ctx = yield* WwMutex.acquireCtx(cls)
      let contended: WwMutex.WwMutex | undefined
      let retries = 0
      for (;;) {
        if (contended !== undefined) yield* WwMutex.lockSlow(contended, ctx)
        const outcome = yield* Effect.forEach(
          locks,
          (m) => (m === contended ? Effect.void : WwMutex.lock(m, ctx).pipe(Effect.asVoid)),
          { discard: true }
        ).pipe(
          Effect.as(undefined),
          Effect.catchTag("Deadlock", (d: Deadlock) => Effect.succeed(d))
        )
        if (outcome === undefined) break
        stats.deadlocks++
        if (ctx.isWounded) stats.wounded++
        yield* WwMutex.unlockAll(ctx)
        contended = locks.find((m) => m.name === outcome.lock)
        retries++
      }
      yield* WwMutex.acquireDone(ctx)
      yield* Effect.yieldNow
      yield* WwMutex.unlockAll(ctx)
      return retries
    })
  )

const wwPhase = (algorithm: WwMutex.Algorithm, cfg: DemoConfig) =>
  Effect.gen(function* () {
    const cls = algorithm === "wait-die" ? WwMutex.WwClass.waitDie("demo_wd") : WwMutex.WwClass.woundWait("demo_ww")
    const locks = Array.from({ length: cfg.buffers }, (_, i) => WwMutex.make(cls, `m${i}`))
    const stats = { deadlocks: 0, wounded: 0 }
    const perFiber = yield* Effect.forEach(
      Array.from({ length: cfg.fibers }, (_, i) => i),
      () =>
        Effect.gen(function* () {
          let max = 0
          for (let t = 0; t < cfg.txnsPerFiber; t++) {
            const set = (yield* pick(cfg.buffers, cfg.perTxn)).map((i) => locks[i] as WwMutex.WwMutex)
            max = Math.max(max, yield* wwTransaction(cls, set, stats))
          }
          return max
        }),
      { concurrency: "unbounded" }
    )
    return {
      algorithm,
      transactions: cfg.fibers * cfg.txnsPerFiber,
      deadlocks: stats.deadlocks,
      wounded: stats.wounded,
      maxRetries: Math.max(...perFiber)
    } satisfies WwStats
  })

/** Runs the whole scenario. */
export const runDemo = (cfg: DemoConfig = defaultConfig): Effect.Effect<DemoResult, Already | Interrupted | Invalid> =>
  Effect.gen(function* () {
    const sink = collectingSink()
    const bos = Array.from({ length: cfg.buffers }, (_, i) => DmaResv.make(`bo${i}`))
    const exec = yield* Effect.forEach(
      Array.from({ length: cfg.fibers }, (_, i) => i),
      (i) => execFiber(i, bos, cfg),
      { concurrency: "unbounded" }
    ).pipe(Effect.provideService(CurrentTraceSink, sink))
    const busy = yield* Effect.forEach(bos, (bo) =>
      DmaResv.testSignaled(bo, "bookkeep").pipe(
        Effect.map((idle) => (idle ? undefined : bo.name)),
        Effect.orDie
      )
    )
    const busyBuffers = busy.filter((n): n is string => n !== undefined)
    const backoffs = sink.events
      .filter((e) => e.name === "drm_exec_backoff")
      .map((e) => ({ task: e.tid, contended: e.args?.contended, retry: e.args?.retry, stamp: e.args?.stamp }))
    const ww = [yield* wwPhase("wait-die", cfg), yield* wwPhase("wound-wait", cfg)]
    return { exec, busyBuffers, backoffs, ww }
  }).pipe((eff) => Lockdep.withConfig({ strict: true, injection: true }, eff), Random.withSeed(cfg.seed))
