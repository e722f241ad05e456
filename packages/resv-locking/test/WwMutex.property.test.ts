/**
 * Property tests (fast-check): random transaction programs on random fibers, under the seeded
 * scheduler, never deadlock (watchdog), never double-own a mutex, and always release everything —
 * including transactions that fail or are interrupted half-way (finalizers are counted).
 */
import { Lockdep, Scheduler, Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result } from "effect"
import fc from "fast-check"
import { Ownership, runOnFibers } from "./helpers.ts"

type End = "commit" | "fail" | "interrupt"
interface Txn {
  readonly locks: ReadonlyArray<number>
  readonly yieldAt: number
  readonly end: End
}
interface Program {
  readonly alg: "wait-die" | "wound-wait"
  readonly injection: boolean
  /** Strict mode on: a correct backoff protocol must never produce a lockdep report. */
  readonly strict: boolean
  readonly nlocks: number
  readonly fibers: ReadonlyArray<ReadonlyArray<Txn>>
  readonly seed: number
}

const arbTxn = (nlocks: number): fc.Arbitrary<Txn> =>
  fc.record({
    locks: fc.array(fc.nat(nlocks - 1), { minLength: 1, maxLength: 6 }),
    yieldAt: fc.nat(6),
    end: fc.constantFrom<End>("commit", "commit", "commit", "fail", "interrupt")
  })

const arbProgram: fc.Arbitrary<Program> = fc.integer({ min: 2, max: 8 }).chain((nlocks) =>
  fc.record({
    alg: fc.constantFrom("wait-die" as const, "wound-wait" as const),
    injection: fc.boolean(),
    strict: fc.boolean(),
    nlocks: fc.constant(nlocks),
    fibers: fc.array(fc.array(arbTxn(nlocks), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }),
    seed: fc.nat()
  })
)

/** Runs one program; returns counters the property checks. */
const runProgram = (p: Program) =>
  Effect.gen(function* () {
    const cls = p.alg === "wait-die" ? WwMutex.WwClass.waitDie("prop") : WwMutex.WwClass.woundWait("prop")
    const locks = Array.from({ length: p.nlocks }, (_, i) => WwMutex.make(cls, `p${i}`))
    const own = new Ownership()
    const c = { started: 0, finalized: 0, committed: 0, failed: 0, other: [] as Array<string> }
    const txn = (t: Txn) =>
      Effect.scoped(
        Effect.gen(function* () {
          const task = yield* Task.current
          const ctx = yield* WwMutex.acquireCtx(cls, { injection: p.injection, strict: p.strict })
          c.started++
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              for (const m of ctx.held) own.leave(m)
              c.finalized++
            })
          )
          let contended: WwMutex.WwMutex | undefined
          for (let retries = 0; ; retries++) {
            if (retries > 64) return yield* Effect.die(new Error("livelock: too many retries"))
            let dead: WwMutex.WwMutex | undefined
            for (const [i, idx] of t.locks.entries()) {
              const m = locks[idx] as WwMutex.WwMutex
              if (i === t.yieldAt) yield* Effect.yieldNow
              if (m === contended) continue
              const r = yield* Effect.result(WwMutex.lock(m, ctx))
              if (Result.isSuccess(r)) own.enter(m, task)
              else if (r.failure._tag === "Deadlock") {
                dead = m
                break
              } else if (r.failure._tag !== "Already") c.other.push(r.failure._tag)
            }
            if (dead === undefined) break
            for (const m of ctx.held) own.leave(m)
            yield* WwMutex.unlockAll(ctx)
            yield* Effect.orDie(WwMutex.lockSlow(dead, ctx))
            own.enter(dead, task)
            contended = dead
          }
          yield* Effect.yieldNow
          if (t.end === "fail") return yield* Effect.fail("txn failed")
          if (t.end === "interrupt") return yield* Effect.interrupt
          for (const m of ctx.held) own.leave(m)
          yield* WwMutex.unlockAll(ctx)
          c.committed++
        })
      )
    yield* runOnFibers(p.fibers, txn, () => c.failed++)
    return { c, locks }
  })

describe("random transaction programs (fast-check + seeded scheduler)", () => {
  it("never deadlock, never double-own, always release everything", async () => {
    await fc.assert(
      fc.asyncProperty(arbProgram, async (p) => {
        Lockdep.clearReports()
        const r = await Effect.runPromise(
          Scheduler.run(p.seed, () => runProgram(p), { yieldProbability: 0.1 }).pipe(Effect.timeout(5_000))
        )
        if (Exit.isFailure(r.exit)) throw new Error(`seed ${p.seed}: ${String(r.exit.cause)}`)
        const { c, locks } = r.exit.value
        const total = p.fibers.reduce((n, f) => n + f.length, 0)
        assert.strictEqual(c.started, total, "every transaction ran")
        assert.strictEqual(c.finalized, total, "every scope finalizer ran")
        assert.strictEqual(c.committed + c.failed, total)
        assert.deepStrictEqual(c.other, [], "only 0 / Deadlock / Already")
        assert.deepStrictEqual(Lockdep.reports(), [], "the backoff protocol is lockdep-clean")
        for (const m of locks) {
          assert.isFalse(m.isLocked, `${m.name} still locked`)
          assert.strictEqual(m.waiterCount, 0)
        }
      }),
      { numRuns: 150 }
    )
  })

  it.effect("a fiber interrupted while it sleeps leaves no waiter and no lock behind", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("sleepkill")
      const locks = Array.from({ length: 3 }, (_, i) => WwMutex.make(cls, `s${i}`))
      yield* WwMutex.lockNoCtx(locks[2] as WwMutex.WwMutex)
      const f = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            for (const m of locks) yield* WwMutex.lock(m, ctx)
          })
        )
      )
      yield* Effect.repeat(Effect.yieldNow, { times: 10 })
      assert.strictEqual(locks[2]?.waiterCount, 1)
      yield* Fiber.interrupt(f)
      assert.isFalse(locks[0]?.isLocked)
      assert.isFalse(locks[1]?.isLocked)
      assert.strictEqual(locks[2]?.waiterCount, 0)
      yield* WwMutex.unlock(locks[2] as WwMutex.WwMutex)
    })
  )
})
