// drm_exec: RFC sub-lists with batch unlock, and the contention cases the drm_exec_test.c KUnit
// suite lacks (contended object locked first, ticket kept, reverse-order backoff, interruptible
// errors incl. the slow lock's, references).
import { CurrentTraceSink, collectingSink } from "@drmkit/core"
import { DmaResv, Exec, Task } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { Bo, names, settle } from "./helpers.ts"

describe("drm_exec sub-lists (transaction-lock-list RFC)", () => {
  it.effect("a sub-list is batch-unlocked (newest first) or merged into the parent", () =>
    Effect.gen(function* () {
      const log: Array<string> = []
      const [vm, a, b, c] = ["vm", "a", "b", "c"].map((n) => new Bo(n, log)) as [Bo, Bo, Bo, Bo]
      const exec = yield* Exec.init<Bo>()
      yield* Exec.untilAllLocked(
        exec,
        Effect.gen(function* () {
          yield* Exec.lock(exec, vm)
          const evict = Exec.beginSubList(exec)
          yield* Exec.lock(exec, a)
          yield* Exec.lock(exec, b)
          assert.strictEqual(yield* Exec.unlockSubList(exec, evict), 2)
          assert.strictEqual(yield* Exec.unlockSubList(exec, evict), 0, "closed")
          const keep = Exec.beginSubList(exec)
          yield* Exec.lock(exec, c)
          yield* Exec.mergeSubList(exec, keep)
        })
      )
      assert.deepStrictEqual(log, ["put b", "put a"])
      assert.deepStrictEqual(names(Exec.lockedObjects(exec)), ["vm", "c"])
      assert.isFalse(DmaResv.isLocked(a.resv) || DmaResv.isLocked(b.resv))
      yield* Exec.fini(exec)
    })
  )

  it.effect("withSubList unlocks on failure and on success, merges on request", () =>
    Effect.gen(function* () {
      const [a, b, c] = ["a", "b", "c"].map((n) => new Bo(n)) as [Bo, Bo, Bo]
      const exec = yield* Exec.init<Bo>()
      const r = yield* Exec.untilAllLocked(
        exec,
        Effect.gen(function* () {
          yield* Exec.lock(exec, a)
          const failed = yield* Effect.flip(
            Exec.withSubList(exec, () => Effect.andThen(Exec.lock(exec, b), Effect.fail("no space" as const)))
          )
          yield* Exec.withSubList(exec, () => Exec.lock(exec, b))
          yield* Exec.withSubList(exec, () => Exec.lock(exec, c), { merge: true })
          return failed
        })
      )
      assert.strictEqual(r, "no space")
      assert.deepStrictEqual(names(Exec.lockedObjects(exec)), ["a", "c"])
      assert.isFalse(DmaResv.isLocked(b.resv))
      yield* Exec.fini(exec)
      assert.strictEqual(a.refs + b.refs + c.refs, 0)
    })
  )

  it.effect("unlocking an object before an open sub-list keeps the sub-list's extent right", () =>
    Effect.gen(function* () {
      const [a, b, c] = ["a", "b", "c"].map((n) => new Bo(n)) as [Bo, Bo, Bo]
      const exec = yield* Exec.init<Bo>()
      yield* Exec.untilAllLocked(
        exec,
        Effect.gen(function* () {
          yield* Exec.lock(exec, a)
          const sub = Exec.beginSubList(exec)
          yield* Exec.lock(exec, b)
          yield* Exec.unlock(exec, a)
          yield* Exec.lock(exec, c)
          assert.strictEqual(yield* Exec.unlockSubList(exec, sub), 2)
        })
      )
      assert.strictEqual(Exec.lockedObjects(exec).length, 0)
      const e = yield* Effect.flip(Exec.unlock(exec, a))
      assert.strictEqual(e._tag, "Invalid")
      yield* Exec.fini(exec)
    })
  )
})

describe("drm_exec contention", () => {
  /** Task A, with an older ticket, holds `x` (in an exec) until `release` runs. */
  const olderHolds = (x: Bo) =>
    Effect.gen(function* () {
      const [gate, locked] = [yield* Deferred.make<void>(), yield* Deferred.make<void>()]
      const fiber = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(
              exec,
              Effect.gen(function* () {
                yield* Exec.lock(exec, x)
                yield* Deferred.succeed(locked, undefined)
                yield* Deferred.await(gate)
              })
            )
          })
        )
      )
      yield* Deferred.await(locked)
      return { release: Effect.andThen(Deferred.succeed(gate, undefined), Fiber.join(fiber)) }
    })

  it.effect("the contended object is locked first on the retry; the ticket (stamp) is kept", () =>
    Effect.gen(function* () {
      const log: Array<string> = []
      const [x, y] = [new Bo("X", log), new Bo("Y", log)]
      const a = yield* olderHolds(x)
      const stamps: Array<number> = []
      const calls: Array<string> = []
      const sink = collectingSink()
      const b = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(
              exec,
              Effect.gen(function* () {
                stamps.push(Exec.ticket(exec)?.stamp ?? -1)
                calls.push("Y")
                yield* Exec.lock(exec, y)
                calls.push("X")
                yield* Exec.lock(exec, x)
              })
            )
            return {
              order: names(Exec.lockedObjects(exec)),
              retries: Exec.retries(exec),
              refs: [x.refs, y.refs]
            }
          })
        ).pipe(Effect.provideService(CurrentTraceSink, sink))
      )
      yield* settle
      assert.isTrue(x.resv.mutex.waiterCount === 1, "B sleeps in the slow lock of X")
      yield* a.release
      const r = yield* Fiber.join(b)
      assert.deepStrictEqual(r.order, ["X", "Y"], "contended X slow-locked first")
      assert.strictEqual(r.retries, 1)
      assert.deepStrictEqual(r.refs, [1, 1], "prelocked X tracked once, its extra reference dropped")
      assert.deepStrictEqual(calls, ["Y", "X", "Y", "X"])
      assert.strictEqual(stamps.length, 2)
      assert.strictEqual(stamps[0], stamps[1], "same ticket after the retry")
      assert.deepStrictEqual(
        sink.events.map((e) => e.name),
        ["drm_exec_backoff", "drm_exec_transaction"]
      )
      assert.strictEqual(sink.events[0]?.args?.contended, "X")
      assert.strictEqual(x.refs + y.refs, 0)
      assert.isFalse(DmaResv.isLocked(x.resv) || DmaResv.isLocked(y.resv))
    })
  )

  it.effect("a backoff unlocks everything in reverse lock order and drops every reference", () =>
    Effect.gen(function* () {
      const log: Array<string> = []
      const [a, b, c, x] = ["a", "b", "c", "X"].map((n) => new Bo(n, log)) as [Bo, Bo, Bo, Bo]
      const older = yield* olderHolds(x)
      const b2 = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, [a, b, c, x], 1))
            return names(Exec.lockedObjects(exec))
          })
        )
      )
      yield* settle
      assert.deepStrictEqual(log, ["put c", "put b", "put a"], "newest first")
      assert.deepStrictEqual([a.refs, b.refs, c.refs, x.refs], [0, 0, 0, 2], "only A's and the contended ref on X")
      assert.isFalse(DmaResv.isLocked(a.resv) || DmaResv.isLocked(b.resv) || DmaResv.isLocked(c.resv))
      yield* older.release
      assert.deepStrictEqual(yield* Fiber.join(b2), ["X", "a", "b", "c"], "the contended X first")
      assert.strictEqual(a.refs + b.refs + c.refs + x.refs, 0)
    })
  )

  it.effect("a contended object the retried body never asks for again stays locked and tracked until fini", () =>
    Effect.gen(function* () {
      const [x, y] = [new Bo("X"), new Bo("Y")]
      const older = yield* olderHolds(x)
      const b = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(
              exec,
              Effect.gen(function* () {
                yield* Exec.lock(exec, y)
                if (Exec.retries(exec) === 0) yield* Exec.lock(exec, x) // only the first pass wants X
              })
            )
            return { order: names(Exec.lockedObjects(exec)), held: DmaResv.isHeld(x.resv), refs: x.refs }
          })
        )
      )
      yield* settle
      yield* older.release
      const r = yield* Fiber.join(b)
      assert.deepStrictEqual(r, { order: ["X", "Y"], held: true, refs: 2 }, "tracked + prelocked reference")
      assert.strictEqual(x.refs + y.refs, 0, "fini dropped both")
      assert.isFalse(DmaResv.isLocked(x.resv))
    })
  )

  it.effect("a retried pass that locks nothing ends the loop; the contended reference lives until fini", () =>
    Effect.gen(function* () {
      const [x, y] = [new Bo("X"), new Bo("Y")]
      const a = yield* olderHolds(x)
      const r = yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* Exec.make<Bo>()
          yield* Exec.untilAllLocked(
            exec,
            Effect.gen(function* () {
              if (Exec.retries(exec) > 0) return // the retried pass needs nothing any more
              yield* Exec.lock(exec, y)
              yield* Exec.lock(exec, x)
            })
          )
          return { locked: Exec.lockedObjects(exec).length, xRefs: x.refs, done: Exec.ticket(exec)?.isDone }
        })
      )
      assert.deepStrictEqual(r, { locked: 0, xRefs: 2, done: true }, "A's reference + the pending contended one")
      assert.strictEqual(x.refs, 1, "fini dropped the contended reference; A's remains")
      assert.strictEqual(y.refs, 0)
      yield* a.release
      assert.strictEqual(x.refs, 0)
    })
  )

  it.effect("the prelocked object unlocked early (sub-list, unlock) is really locked again when asked for", () =>
    Effect.gen(function* () {
      const [x, y, z] = [new Bo("X"), new Bo("Y"), new Bo("Z")]
      const a = yield* olderHolds(x)
      const b = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(
              exec,
              Effect.gen(function* () {
                // pass 2: the contended X is slow-locked inside this sub-list and dropped with it
                yield* Exec.withSubList(exec, () => Exec.lock(exec, z))
                yield* Exec.lock(exec, y)
                yield* Exec.lock(exec, x)
              })
            )
            return { held: DmaResv.isHeld(x.resv), order: names(Exec.lockedObjects(exec)), refs: x.refs }
          })
        )
      )
      yield* settle
      yield* a.release
      const r = yield* Fiber.join(b)
      assert.deepStrictEqual(r, { held: true, order: ["Y", "X"], refs: 1 })
      assert.strictEqual(x.refs + y.refs + z.refs, 0)
    })
  )

  it.effect("a body that swallows Deadlock is re-run all the same; further locks fail fast", () =>
    Effect.gen(function* () {
      const [x, y, z] = [new Bo("X"), new Bo("Y"), new Bo("Z")]
      const a = yield* olderHolds(x)
      const seen: Array<string> = []
      const b = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(
              exec,
              Effect.gen(function* () {
                yield* Exec.lock(exec, y)
                const r1 = yield* Effect.result(Exec.lock(exec, x))
                seen.push(r1._tag === "Failure" ? r1.failure._tag : "ok")
                const r2 = yield* Effect.result(Exec.lock(exec, z))
                seen.push(r2._tag === "Failure" ? r2.failure._tag : "ok")
                if (r1._tag === "Failure") assert.isTrue(Exec.isContended(exec))
              })
            )
            return names(Exec.lockedObjects(exec))
          })
        )
      )
      yield* settle
      assert.isFalse(DmaResv.isLocked(z.resv), "Z never locked in the contended pass")
      yield* a.release
      assert.deepStrictEqual(yield* Fiber.join(b), ["X", "Y", "Z"])
      assert.deepStrictEqual(seen, ["Deadlock", "Deadlock", "ok", "ok"])
    })
  )

  it.effect("interruptible exec: a signal while waiting fails the lock with Interrupted", () =>
    Effect.gen(function* () {
      const x = new Bo("X")
      const a = yield* olderHolds(x)
      const b = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>({ interruptible: true })
            return yield* Exec.untilAllLocked(exec, Exec.lock(exec, x))
          })
        )
      )
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      yield* Task.signal(b.id)
      const e = yield* Effect.flip(Fiber.join(b))
      assert.strictEqual(e._tag, "Interrupted")
      Task.clearSignal(b.id)
      assert.strictEqual(x.refs, 1, "only A's reference remains")
      yield* a.release
      assert.strictEqual(x.refs, 0)
    })
  )

  it.effect("interrupted slow lock: the error surfaces on the next lock call and the contended ref is dropped", () =>
    Effect.gen(function* () {
      const [x, y] = [new Bo("X"), new Bo("Y")]
      const a = yield* olderHolds(x)
      const asked: Array<string> = []
      const b = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>({ interruptible: true })
            return yield* Exec.untilAllLocked(
              exec,
              Effect.gen(function* () {
                asked.push("Y")
                yield* Exec.lock(exec, y).pipe(Effect.tapError((e) => Effect.sync(() => asked.push(`Y:${e._tag}`))))
                yield* Exec.lock(exec, x)
              })
            )
          })
        )
      )
      yield* settle
      assert.strictEqual(x.resv.mutex.waiterCount, 1, "B sleeps in the slow lock of X")
      yield* Task.signal(b.id)
      const e = yield* Effect.flip(Fiber.join(b))
      Task.clearSignal(b.id)
      assert.strictEqual(e._tag, "Interrupted")
      assert.deepStrictEqual(asked, ["Y", "Y", "Y:Interrupted"], "X's slow-lock error returned for Y")
      assert.strictEqual(x.refs, 1)
      assert.strictEqual(y.refs, 0)
      yield* a.release
    })
  )

  it.effect("an uninterruptible exec ignores signals; fiber interruption releases everything", () =>
    Effect.gen(function* () {
      const [x, y] = [new Bo("X"), new Bo("Y")]
      const a = yield* olderHolds(x)
      const b = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* Exec.make<Bo>()
            yield* Exec.untilAllLocked(exec, Effect.andThen(Exec.lock(exec, y), Exec.lock(exec, x)))
          })
        )
      )
      yield* settle
      yield* Task.signal(b.id)
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      assert.isUndefined(b.pollUnsafe(), "still waiting")
      Task.clearSignal(b.id)
      yield* Fiber.interrupt(b)
      assert.strictEqual(x.resv.mutex.waiterCount, 0)
      assert.strictEqual(y.refs, 0)
      assert.strictEqual(x.refs, 1)
      yield* a.release
      assert.isFalse(DmaResv.isLocked(x.resv) || DmaResv.isLocked(y.resv))
    })
  )

  it.effect("deadlock injection: a 64-object transaction backs off repeatedly and still locks everything", () =>
    Effect.gen(function* () {
      const bos = Array.from({ length: 64 }, (_, i) => new Bo(`bo${i}`))
      const r = yield* Effect.scoped(
        Effect.gen(function* () {
          const exec = yield* Exec.make<Bo>({ injection: true })
          yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, bos, 1))
          assert.isTrue(bos.every((b) => DmaResv.isHeld(b.resv)))
          return { retries: Exec.retries(exec), n: Exec.lockedObjects(exec).length }
        })
      )
      assert.isAtLeast(r.retries, 3)
      assert.strictEqual(r.n, 64)
      assert.isTrue(bos.every((b) => b.refs === 0 && !DmaResv.isLocked(b.resv)))
    })
  )
})
