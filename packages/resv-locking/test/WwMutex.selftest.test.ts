/**
 * The shapes of `kernel/locking/test-ww_mutex.c`, run for both classes like the selftest does
 * (wound-wait `ww_class` first, then wait-die `wd_class`): mutual exclusion, AA, ABBA and cyclic
 * deadlocks (with and without the slow-path resolution), and the stress phases (inorder, reorder,
 * one, and the 2046-lock mix) with injection on and off.
 */
import { Already, Deadlock } from "@drmkit/core"
import { Lockdep, Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Latch, Result } from "effect"
import {
  algorithms,
  classOf,
  lockInorder,
  lockReorder,
  mutexes,
  newStats,
  Ownership,
  rng,
  type Stats,
  shuffle
} from "./helpers.ts"

const yields = (n: number) => Effect.repeat(Effect.yieldNow, { times: n - 1 })

describe.each(algorithms)("test-ww_mutex (%s)", (alg) => {
  describe("test_mutex: mutual exclusion", () => {
    const modes = ["ctx", "noctx", "trylock"] as const
    it.effect.each(modes)("%s waiter cannot enter while held", (mode) =>
      Effect.gen(function* () {
        const cls = classOf(alg, "mutex")
        const m = WwMutex.make(cls, "m")
        const ctx = yield* WwMutex.acquireCtx(cls)
        yield* WwMutex.lock(m, ctx)
        let entered = false
        const worker = Effect.gen(function* () {
          if (mode === "trylock") {
            while ((yield* WwMutex.trylock(m)) === undefined) yield* Effect.yieldNow
          } else if (mode === "ctx") {
            yield* Effect.scoped(
              Effect.gen(function* () {
                const c = yield* WwMutex.acquireCtx(cls)
                yield* WwMutex.lock(m, c)
                entered = true
                yield* WwMutex.unlock(m)
              })
            )
            return
          } else yield* WwMutex.lockNoCtx(m)
          entered = true
          yield* WwMutex.unlock(m)
        })
        const f = yield* Effect.forkChild(worker)
        yield* yields(20)
        assert.isFalse(entered, "waiter entered a held mutex")
        yield* WwMutex.unlock(m)
        yield* Fiber.join(f)
        assert.isTrue(entered)
        assert.isFalse(m.isLocked)
      })
    )
  })

  it.effect("test_aa: relock with the same ctx is Already; trylocks fail", () =>
    Effect.gen(function* () {
      const cls = classOf(alg, "aa")
      const m = WwMutex.make(cls, "a")
      const ctx = yield* WwMutex.acquireCtx(cls)
      yield* WwMutex.lock(m, ctx)
      assert.isUndefined(yield* WwMutex.trylock(m))
      assert.isUndefined(yield* WwMutex.trylock(m, ctx))
      const e = yield* Effect.flip(WwMutex.lock(m, ctx))
      assert.instanceOf(e, Already)
      assert.strictEqual(ctx.acquired, 1)
      assert.strictEqual(m.lockingCtx, ctx)
      yield* WwMutex.unlock(m)
      assert.strictEqual(ctx.acquired, 0)
    })
  )

  const abbaCases = [
    { trylock: false, resolve: false },
    { trylock: false, resolve: true },
    { trylock: true, resolve: false },
    { trylock: true, resolve: true }
  ]
  it.effect.each(abbaCases)("test_abba %o", ({ trylock, resolve }) =>
    Effect.gen(function* () {
      const cls = classOf(alg, "abba")
      const [a, b] = mutexes(cls, 2) as [WwMutex.WwMutex, WwMutex.WwMutex]
      const bothHoldFirst = yield* Latch.make(false)
      let holding = 0
      const side = (first: WwMutex.WwMutex, second: WwMutex.WwMutex) =>
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls, { injection: false })
            if (trylock) assert.isDefined(yield* WwMutex.trylock(first, ctx))
            else yield* WwMutex.lock(first, ctx)
            if (++holding === 2) yield* bothHoldFirst.open
            yield* bothHoldFirst.await
            const r = yield* Effect.result(WwMutex.lock(second, ctx))
            if (Result.isFailure(r) && r.failure._tag === "Deadlock" && resolve) {
              yield* WwMutex.unlock(first)
              yield* WwMutex.lockSlow(second, ctx)
              yield* WwMutex.lock(first, ctx)
              yield* WwMutex.unlockAll(ctx)
              return "resolved" as const
            }
            yield* WwMutex.unlockAll(ctx)
            return Result.isSuccess(r) ? ("ok" as const) : r.failure._tag
          })
        )
      const fa = yield* Effect.forkChild(side(a, b))
      const fb = yield* Effect.forkChild(side(b, a))
      const results = [yield* Fiber.join(fa), yield* Fiber.join(fb)]
      for (const r of results) assert.include(["ok", "Deadlock", "resolved"], r)
      if (resolve) assert.notInclude(results, "Deadlock")
      else assert.include(results, "Deadlock", "ABBA must make one side back off")
      assert.include(results, "ok", "the winner must get both locks")
      assert.isFalse(a.isLocked || b.isLocked)
    })
  )

  const cycles = [2, 3, 4, 8].flatMap((n) => [
    { n, slow: true },
    { n, slow: false }
  ])
  it.effect.each(cycles)("test_cycle %o: every task completes after backing off", ({ n, slow }) =>
    Effect.gen(function* () {
      const cls = classOf(alg, "cycle")
      const locks = mutexes(cls, n, "cycle")
      const ready = yield* Latch.make(false)
      let started = 0
      const worker = (i: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const own = locks[i] as WwMutex.WwMutex
            const next = locks[(i + 1) % n] as WwMutex.WwMutex
            const ctx = yield* WwMutex.acquireCtx(cls, { injection: false })
            yield* WwMutex.lock(own, ctx)
            if (++started === n) yield* ready.open
            yield* ready.await
            const r = yield* Effect.result(WwMutex.lock(next, ctx))
            let backedOff = false
            if (Result.isFailure(r)) {
              assert.instanceOf(r.failure, Deadlock)
              backedOff = true
              yield* WwMutex.unlock(own)
              // the slow lock, or a plain lock with nothing held (semantically the same)
              yield* slow ? WwMutex.lockSlow(next, ctx) : WwMutex.lock(next, ctx)
              yield* WwMutex.lock(own, ctx)
            }
            assert.strictEqual(ctx.acquired, 2)
            yield* WwMutex.unlockAll(ctx)
            return backedOff
          })
        )
      const fibers = yield* Effect.forEach(locks, (_, i) => Effect.forkChild(worker(i)))
      const backoffs = yield* Fiber.joinAll(fibers)
      assert.isAtLeast(backoffs.filter((x) => x).length, 1, "a cycle needs at least one backoff")
      assert.isTrue(locks.every((m) => !m.isLocked))
    })
  )
})

type Shape = "inorder" | "reorder" | "one"

/** One stress phase: `workers` fibers of `shapes` over `nlocks` mutexes for `ms` milliseconds. */
const stress = (
  alg: (typeof algorithms)[number],
  nlocks: number,
  shapes: ReadonlyArray<Shape>,
  workers: number,
  ms: number,
  injection: boolean
) =>
  Effect.gen(function* () {
    const cls = classOf(alg, `stress-${nlocks}`)
    const locks = mutexes(cls, nlocks)
    const own = new Ownership()
    const stats: Stats = newStats()
    const deadline = Date.now() + ms
    const hold = (ms: ReadonlyArray<WwMutex.WwMutex>, task: number) =>
      Effect.gen(function* () {
        for (const m of ms) own.enter(m, task)
        yield* Effect.yieldNow // dummy_load: hold while others run
        for (const m of ms) own.leave(m)
      })
    const worker = (w: number) =>
      Effect.gen(function* () {
        const shape = shapes[w % shapes.length] as Shape
        const rand = rng(w + 1)
        const task = yield* Task.current
        while (Date.now() < deadline) {
          if (shape === "one") {
            const m = locks[Math.floor(rand() * nlocks)] as WwMutex.WwMutex
            yield* WwMutex.lockNoCtx(m)
            yield* hold([m], task)
            yield* WwMutex.unlock(m)
          } else {
            const order = shuffle([...locks], rand).slice(0, shape === "inorder" ? nlocks : Math.max(2, nlocks >> 1))
            if (shape === "inorder") order.sort((x, y) => (x.name < y.name ? -1 : 1))
            yield* Effect.scoped(
              Effect.gen(function* () {
                const ctx = yield* WwMutex.acquireCtx(cls, { injection })
                const retries = yield* shape === "inorder"
                  ? lockInorder(ctx, order, stats)
                  : lockReorder(ctx, order, stats)
                stats.maxRetries = Math.max(stats.maxRetries, retries)
                yield* hold(ctx.acquired === order.length ? order : [], task)
                assert.strictEqual(ctx.acquired, order.length)
                yield* WwMutex.unlockAll(ctx)
              })
            )
          }
          stats.txns++
        }
      })
    const fibers = yield* Effect.forEach(
      Array.from({ length: workers }, (_, i) => i),
      (i) => Effect.forkChild(worker(i))
    )
    const exits = yield* Effect.timeout(Fiber.awaitAll(fibers), ms + 10_000)
    for (const e of exits) if (Exit.isFailure(e)) assert.fail(`stress worker failed: ${String(e.cause)}`)
    assert.deepStrictEqual(stats.other, [], "only 0 / Deadlock / Already may be seen")
    assert.isAbove(stats.txns, workers)
    assert.isTrue(locks.every((m) => !m.isLocked && m.waiterCount === 0))
    return { stats, acquisitions: own.acquisitions }
  })

describe.each(algorithms)("test-ww_mutex stress (%s)", (alg) => {
  it.live.each([false, true])("stress_inorder, 16 locks, 8 workers, injection=%s", (injection) =>
    Effect.gen(function* () {
      const { stats } = yield* stress(alg, 16, ["inorder"], 8, 120, injection)
      if (injection) assert.isAbove(stats.backoffs, 0, "injection must force backoffs")
    })
  )
  it.live.each([false, true])("stress_reorder, 16 locks, 8 workers, injection=%s", (injection) =>
    Effect.gen(function* () {
      const { stats } = yield* stress(alg, 16, ["reorder"], 8, 120, injection)
      assert.isAbove(stats.backoffs, 0)
    })
  )
  it.live.each([false, true])("stress_one (ctx-less lockers never fail), injection=%s", (injection) =>
    stress(alg, 16, ["one"], 8, 100, injection)
  )
  it.live.each([false, true])("2046 locks, inorder+reorder+one, injection=%s", (injection) =>
    Effect.gen(function* () {
      const { acquisitions } = yield* stress(alg, 2046, ["inorder", "reorder", "one"], 6, 200, injection)
      assert.isAbove(acquisitions, 2046)
    })
  )
})

describe("injection is per ctx", () => {
  it.effect("global switch off, ctx switch on: the schedule fires", () =>
    Lockdep.withConfig(
      { injection: false },
      Effect.gen(function* () {
        const cls = WwMutex.WwClass.waitDie("inj")
        const locks = mutexes(cls, 40)
        const ctx = yield* WwMutex.acquireCtx(cls, { injection: true })
        const stats = newStats()
        yield* lockInorder(ctx, locks, stats)
        assert.isAbove(stats.backoffs, 0)
        yield* WwMutex.unlockAll(ctx)
        const quiet = yield* WwMutex.acquireInit(cls)
        const s2 = newStats()
        yield* lockInorder(quiet, locks, s2)
        assert.strictEqual(s2.backoffs, 0)
        yield* WwMutex.unlockAll(quiet)
        yield* WwMutex.acquireFini(quiet)
        const d = yield* Deferred.make<void>()
        yield* Deferred.succeed(d, undefined)
      })
    )
  )
})
