/**
 * The seeded deterministic scheduler: the same seed replays the same interleaving, different
 * seeds explore different ones, and a failing property names its seed and fails again on replay.
 */
import { Scheduler, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it, vi } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { lockInorder, mutexes, newStats } from "./helpers.ts"

/** 4 workers, 2 transactions each over 4 shared locks in worker-specific orders, noting every step. */
const program = (alg: "wait-die" | "wound-wait") => (s: Scheduler.Deterministic) =>
  Effect.gen(function* () {
    const cls = alg === "wait-die" ? WwMutex.WwClass.waitDie("sched") : WwMutex.WwClass.woundWait("sched")
    const locks = mutexes(cls, 4)
    const stats = newStats()
    const worker = (w: number) =>
      Effect.gen(function* () {
        for (let round = 0; round < 2; round++) {
          const order = locks.map((_, i) => locks[(i + w) % locks.length] as WwMutex.WwMutex)
          yield* Effect.scoped(
            Effect.gen(function* () {
              const ctx = yield* WwMutex.acquireCtx(cls, { injection: false })
              const backoffs = yield* lockInorder(ctx, order, stats)
              s.note(`w${w} r${round} locked all after ${backoffs} backoffs`)
              yield* Scheduler.yieldPoint
              yield* WwMutex.unlockAll(ctx)
              s.note(`w${w} r${round} released`)
            })
          )
        }
      })
    const fibers = yield* Effect.forEach([0, 1, 2, 3], (w) => Effect.forkChild(worker(w)))
    yield* Fiber.joinAll(fibers)
    return stats.backoffs
  })

describe("Scheduler.Deterministic", () => {
  it.effect.each(["wait-die", "wound-wait"] as const)("same seed => same interleaving (%s)", (alg) =>
    Effect.gen(function* () {
      const a = yield* Scheduler.run(42, program(alg))
      const b = yield* Scheduler.run(42, program(alg))
      assert.isTrue(Exit.isSuccess(a.exit) && Exit.isSuccess(b.exit))
      assert.deepStrictEqual(a.trace, b.trace)
      assert.strictEqual(a.fingerprint, b.fingerprint)
      assert.strictEqual(a.picks, b.picks)
      assert.isAbove(a.picks, 0, "the scheduler took the decisions")
      assert.strictEqual(a.trace.length, 16)
    })
  )

  it.effect("different seeds explore different interleavings", () =>
    Effect.gen(function* () {
      const traces = new Set<string>()
      for (let seed = 1; seed <= 8; seed++) {
        const r = yield* Scheduler.run(seed, program("wait-die"), { yieldProbability: 0.2 })
        assert.isTrue(Exit.isSuccess(r.exit))
        traces.add(r.trace.join("|"))
      }
      assert.isAtLeast(traces.size, 2)
    })
  )

  it.effect("a failing property prints its seed and the seed replays the failure", () =>
    Effect.gen(function* () {
      // Deliberately wrong claim: "worker 0 always finishes its first transaction first".
      const property = (s: Scheduler.Deterministic) =>
        Effect.gen(function* () {
          yield* program("wait-die")(s)
          const first = s.trace.find((e) => e.endsWith("released"))
          if (first?.startsWith("w0") !== true) return yield* Effect.fail(`first release was ${first}`)
        })
      const failure = yield* Effect.flip(
        Scheduler.check({ seeds: 50, quiet: true, scheduler: { yieldProbability: 0.2 } }, property)
      )
      assert.strictEqual(failure._tag, "SeedFailure")
      assert.include(failure.message, `seed ${failure.seed}`)
      assert.include(failure.message, `DRMKIT_SEED=${failure.seed}`)
      const replay = yield* Scheduler.run(failure.seed, property, { yieldProbability: 0.2 })
      assert.isTrue(Exit.isFailure(replay.exit), "the printed seed fails again")
      assert.deepStrictEqual(replay.trace, failure.trace)
    })
  )

  it.effect("the failing seed is printed", () =>
    Effect.gen(function* () {
      const printed: Array<string> = []
      const spy = vi.spyOn(console, "error").mockImplementation((msg: unknown) => void printed.push(String(msg)))
      const failure = yield* Effect.flip(
        Scheduler.check({ seeds: 3, firstSeed: 5 }, () => Effect.fail("always wrong"))
      ).pipe(Effect.ensuring(Effect.sync(() => spy.mockRestore())))
      assert.strictEqual(failure.seed, 5)
      assert.strictEqual(printed.length, 1)
      assert.include(printed[0], "seed 5")
    })
  )

  it.effect("a passing property passes every seed", () =>
    Scheduler.check({ seeds: 20 }, (s) =>
      Effect.gen(function* () {
        yield* program("wound-wait")(s)
        const released = s.trace.filter((e) => e.endsWith("released")).length
        if (released !== 8) return yield* Effect.fail(`released ${released}`)
      })
    )
  )
})
