/**
 * ww_mutex trace events: contended sleeps become `X` slices and backoffs `-EDEADLK` instants on
 * the fiber's `CurrentTraceSink` when `traceContention` is on; the uncontended path emits nothing.
 */
import { CurrentTraceSink, collectingSink, Deadlock } from "@drmkit/core"
import { Lockdep, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"

describe("ww_mutex tracing", () => {
  it.effect("contended sleep and backoff are traced, the fast path is not", () => {
    const sink = collectingSink()
    return Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("traced")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      const old = yield* WwMutex.acquireInit(cls)
      yield* WwMutex.lock(a, old)
      assert.strictEqual(sink.events.length, 0, "uncontended lock emits nothing")
      const ready = yield* Deferred.make<void>()
      const young = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* WwMutex.lock(b, ctx)
            yield* Deferred.succeed(ready, undefined)
            return yield* Effect.flip(WwMutex.lock(a, ctx)) // holder older: die at once
          })
        )
      )
      yield* Deferred.await(ready)
      assert.instanceOf(yield* Fiber.join(young), Deadlock)
      const sleeper = yield* Effect.forkChild(
        Effect.scoped(Effect.andThen(WwMutex.acquireCtx(cls), (c) => WwMutex.lock(a, c)))
      )
      yield* Effect.repeat(Effect.yieldNow, { times: 10 })
      yield* WwMutex.unlock(a)
      yield* Fiber.join(sleeper)
      yield* WwMutex.acquireFini(old)
      const deadlk = sink.events.filter((e) => e.name === "-EDEADLK")
      assert.strictEqual(deadlk.length, 1)
      assert.strictEqual(deadlk[0]?.cat, "ww_mutex")
      assert.strictEqual(deadlk[0]?.args?.lock, "a")
      const slices = sink.events.filter((e) => e.ph === "X").map((e) => e.args?.outcome)
      assert.deepStrictEqual(slices, ["-EDEADLK", "acquired"], "the dying attempt queued, then the sleeper")
    }).pipe(Effect.provideService(CurrentTraceSink, sink), (e) => Lockdep.withConfig({ traceContention: true }, e))
  })
})
