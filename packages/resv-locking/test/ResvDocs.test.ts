// The examples of the WwMutex / DmaFence / DmaResv / Exec module docs and README sections, compiled and run,
// so the documentation cannot drift from the API.
import { DmaFence, DmaResv, Exec, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"

describe("documented examples", () => {
  it.effect("README backoff loop (Method 2): opposite orders on two fibers both complete", () =>
    Effect.gen(function* () {
      const lockAll = (ctx: WwMutex.AcquireCtx, locks: ReadonlyArray<WwMutex.WwMutex>) =>
        Effect.gen(function* () {
          let contended: WwMutex.WwMutex | undefined
          for (;;) {
            let dead: WwMutex.WwMutex | undefined
            for (const m of locks) {
              if (m === contended) continue // slow-locked below
              const r = yield* Effect.result(WwMutex.lock(m, ctx))
              if (Result.isFailure(r)) {
                if (r.failure._tag !== "Deadlock") return yield* Effect.fail(r.failure)
                dead = m
                break
              }
            }
            if (dead === undefined) return
            yield* WwMutex.unlockAll(ctx) // release everything, keep the ticket
            yield* WwMutex.lockSlow(dead, ctx) // nothing held: can only sleep
            contended = dead
          }
        })
      const cls = WwMutex.WwClass.waitDie("demo")
      const [a, b] = [WwMutex.make(cls, "a"), WwMutex.make(cls, "b")]
      const program = (order: ReadonlyArray<WwMutex.WwMutex>) =>
        Effect.scoped(
          Effect.gen(function* () {
            const ctx = yield* WwMutex.acquireCtx(cls)
            yield* lockAll(ctx, order)
            yield* WwMutex.acquireDone(ctx)
            const both = ctx.acquired
            yield* Effect.yieldNow
            yield* WwMutex.unlockAll(ctx)
            return both
          })
        )
      const held = yield* Effect.all([program([a, b]), program([b, a])], { concurrency: 2 })
      assert.deepStrictEqual(held, [2, 2])
      assert.isFalse(a.isLocked || b.isLocked)
    })
  )

  it.effect("DmaFence module example", () =>
    Effect.gen(function* () {
      const ring = DmaFence.contextAlloc("gfx ring 0")
      const job = DmaFence.make(ring) // seqno 1 on that timeline
      const program = Effect.gen(function* () {
        yield* Effect.forkChild(DmaFence.signal(job)) // the "hardware" completes the job
        const left = yield* DmaFence.wait(job, { interruptible: true, timeoutMs: 100 })
        return left
      })
      assert.strictEqual(job.seqno, 1)
      assert.isAbove(yield* program, 0)
    })
  )

  it.effect("DmaResv module / README example", () =>
    Effect.gen(function* () {
      const bo = DmaResv.make("bo0")
      const ring = DmaFence.contextAlloc("gfx")
      const job = DmaFence.make(ring)
      const submit = Effect.scoped(
        Effect.gen(function* () {
          const ctx = yield* WwMutex.acquireCtx(WwMutex.reservationWwClass)
          const held = yield* DmaResv.lock(bo, ctx) // Held<DmaResv>: the proof
          yield* DmaResv.reserveFences(held, 1) // before the point of no return
          yield* DmaResv.addFence(held, job, "write") // cannot fail now
          yield* DmaResv.unlock(held)
        })
      )
      yield* submit
      const idle = DmaResv.waitTimeout(bo, DmaResv.usageRw(true), { interruptible: true, timeoutMs: 100 })
      assert.strictEqual(yield* DmaResv.waitTimeout(bo, "read", { timeoutMs: 0 }), 0, "busy")
      job.signal()
      assert.strictEqual(yield* idle, 100)
    })
  )

  it.effect("Exec module / README example", () =>
    Effect.gen(function* () {
      const ring = DmaFence.contextAlloc("gfx")
      const submit = (bos: ReadonlyArray<DmaResv.DmaResv>, job: DmaFence.DmaFence) =>
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<DmaResv.DmaResv>({ interruptible: true }) // drm_exec_init
            yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, bos, 1)) // the retry loop
            for (const bo of Exec.lockedObjects(exec)) {
              yield* DmaResv.addFence(Exec.held(exec, bo), job, "write")
            }
          })
        ) // drm_exec_fini: one reverse-order bulk release
      const bos = [DmaResv.make("a"), DmaResv.make("b")]
      const job = DmaFence.make(ring)
      yield* submit(bos, job)
      for (const bo of bos) {
        assert.isFalse(DmaResv.isLocked(bo))
        assert.deepStrictEqual(yield* DmaResv.getFences(bo, "write"), [job])
      }
    })
  )
})
