/**
 * The ww block of `lib/locking-selftest.c` (`ww_tests()`), as a strict-mode matrix: every case the
 * kernel expects to FAIL must produce the named report, every SUCCESS case none. The class is
 * wait-die like the selftest's `ww_lockdep`. Plus the always-on checks and the injection schedule.
 */
import { Deadlock, Invalid } from "@drmkit/core"
import { Lockdep, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Latch, type Scope } from "effect"

type Kind = Lockdep.ViolationKind
type M = WwMutex.WwMutex

const setup = () => {
  const cls = WwMutex.WwClass.waitDie("ww_lockdep")
  return { cls, o: WwMutex.make(cls, "o"), o2: WwMutex.make(cls, "o2"), o3: WwMutex.make(cls, "o3") }
}

const violationOf = (exit: Exit.Exit<unknown, unknown>): Lockdep.Violation | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const d = exit.cause.reasons.find(Cause.isDieReason)?.defect
  return d instanceof Lockdep.LockdepViolation ? d.violation : undefined
}

/** Runs `body` in strict mode (die on report) and returns the violation it died with. */
const strictRun = <A, E>(body: Effect.Effect<A, E, Scope.Scope>) =>
  Lockdep.withConfig({ strict: true, onReport: "die", injection: false }, Effect.exit(Effect.scoped(body)))

const expectReport = (kind: Kind, body: Effect.Effect<unknown, unknown, Scope.Scope>) =>
  Effect.gen(function* () {
    const exit = yield* strictRun(body)
    const v = violationOf(exit)
    assert.isDefined(v, `expected a ${kind} report, got ${Exit.isSuccess(exit) ? "success" : String(exit.cause)}`)
    assert.strictEqual(v?.kind, kind)
    assert.isNotEmpty(v?.message)
  })

const expectClean = (body: Effect.Effect<unknown, unknown, Scope.Scope>) =>
  Effect.gen(function* () {
    Lockdep.clearReports()
    const exit = yield* strictRun(body)
    assert.isTrue(Exit.isSuccess(exit), `expected success, got ${Exit.isFailure(exit) ? String(exit.cause) : ""}`)
    assert.deepStrictEqual(Lockdep.reports(), [])
  })

/** A helper fiber with an OLDER ctx holding `m` until released: the selftest's fake `t2`. */
const olderHolder = (cls: WwMutex.WwClass, m: M) =>
  Effect.gen(function* () {
    const locked = yield* Deferred.make<void>()
    const go = yield* Latch.make(false)
    const fiber = yield* Effect.forkChild(
      Effect.scoped(
        Effect.gen(function* () {
          const t2 = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lock(m, t2)
          yield* Deferred.succeed(locked, undefined)
          yield* go.await
          yield* WwMutex.unlock(m)
        })
      )
    )
    yield* Deferred.await(locked)
    return { release: Effect.andThen(go.open, Effect.orDie(Fiber.join(fiber))) }
  })

/** t holds o, then gets -EDEADLK on o2 (held by an older ctx). */
const edeadlk = Effect.gen(function* () {
  const { cls, o, o2, o3 } = setup()
  const holder = yield* olderHolder(cls, o2)
  const t = yield* WwMutex.acquireCtx(cls)
  yield* WwMutex.lock(o, t)
  const e = yield* Effect.flip(WwMutex.lock(o2, t))
  assert.instanceOf(e, Deadlock)
  assert.strictEqual(t.contendingLock, o2)
  return { cls, o, o2, o3, t, holder }
})

describe("locking-selftest ww_tests (strict mode)", () => {
  describe("ww api failures", () => {
    it.effect("fail_acquire: pure API, no report", () =>
      expectClean(
        Effect.gen(function* () {
          const { cls, o, o2 } = setup()
          const t = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lock(o, t)
          assert.instanceOf(yield* Effect.flip(WwMutex.lock(o, t)), Error)
          assert.isUndefined(yield* WwMutex.trylock(o))
          const younger = Effect.scoped(
            Effect.gen(function* () {
              const t2 = yield* WwMutex.acquireCtx(cls)
              yield* WwMutex.lock(o2, t2)
              const r = yield* Effect.flip(WwMutex.lock(o, t2))
              yield* WwMutex.unlock(o2)
              return r
            })
          )
          assert.instanceOf(yield* Effect.flatMap(Effect.forkChild(younger), Fiber.join), Deadlock)
          yield* WwMutex.unlock(o)
        })
      )
    )
    it.effect("normal: ctx-less lock/trylock/unlock, no report", () =>
      expectClean(
        Effect.gen(function* () {
          const { o } = setup()
          yield* WwMutex.lockNoCtx(o)
          yield* WwMutex.unlock(o)
          assert.isDefined(yield* WwMutex.trylock(o))
          yield* WwMutex.unlock(o)
        })
      )
    )
    it.effect("unneeded_slow", () =>
      expectReport(
        "slow-without-deadlock",
        Effect.gen(function* () {
          const { cls, o } = setup()
          const t = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lockSlow(o, t)
        })
      )
    )
  })

  describe("ww contexts mixing", () => {
    it.effect("two_contexts", () =>
      expectReport(
        "nested-ctx",
        Effect.gen(function* () {
          const { cls } = setup()
          yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.acquireCtx(cls)
        })
      )
    )
    it.effect("diff_class: Invalid, recorded, nothing changed", () =>
      Effect.gen(function* () {
        Lockdep.clearReports()
        const exit = yield* strictRun(
          Effect.gen(function* () {
            const { o } = setup()
            const t = yield* WwMutex.acquireCtx(WwMutex.WwClass.waitDie("other"))
            const e = yield* Effect.flip(WwMutex.lock(o, t))
            assert.instanceOf(e, Invalid)
            assert.isFalse(o.isLocked)
            assert.strictEqual(t.acquired, 0)
          })
        )
        assert.isTrue(Exit.isSuccess(exit))
        assert.strictEqual(Lockdep.reports()[0]?.kind, "wrong-class")
      })
    )
    it.effect("contexts of different classes nest fine", () =>
      expectClean(
        Effect.gen(function* () {
          const modeset = WwMutex.WwClass.woundWait("crtc_ww_class")
          const { cls, o } = setup()
          const outer = yield* WwMutex.acquireCtx(modeset)
          const crtc = WwMutex.make(modeset, "crtc")
          yield* WwMutex.lock(crtc, outer)
          const inner = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lock(o, inner)
          yield* WwMutex.unlockAll(inner)
          yield* WwMutex.unlockAll(outer)
        })
      )
    )
  })

  describe("finishing ww context", () => {
    it.effect("context_done_twice", () =>
      expectReport(
        "done-twice",
        Effect.gen(function* () {
          const t = yield* WwMutex.acquireCtx(setup().cls)
          yield* WwMutex.acquireDone(t)
          yield* WwMutex.acquireDone(t)
        })
      )
    )
    it.effect("context_unlock_twice", () =>
      expectReport(
        "unlock-unheld",
        Effect.gen(function* () {
          const { cls, o } = setup()
          const t = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lock(o, t)
          yield* WwMutex.unlock(o)
          yield* WwMutex.unlock(o)
        })
      )
    )
    it.effect("context_fini_early", () =>
      expectReport(
        "fini-with-locks-held",
        Effect.gen(function* () {
          const { cls, o } = setup()
          const t = yield* WwMutex.acquireInit(cls)
          yield* WwMutex.lock(o, t)
          yield* WwMutex.acquireFini(t)
        })
      )
    )
    it.effect("context_fini_early via the scope (success exit with locks held)", () =>
      expectReport(
        "fini-with-locks-held",
        Effect.gen(function* () {
          const { cls, o } = setup()
          const t = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lock(o, t)
        })
      )
    )
    it.effect("context_fini_twice", () =>
      expectReport(
        "fini-twice",
        Effect.gen(function* () {
          const t = yield* WwMutex.acquireInit(setup().cls)
          yield* WwMutex.acquireFini(t)
          yield* WwMutex.acquireFini(t)
        })
      )
    )
    it.effect("context_lock_after_done", () =>
      expectReport(
        "lock-after-done",
        Effect.gen(function* () {
          const { cls, o } = setup()
          const t = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.acquireDone(t)
          yield* WwMutex.lock(o, t)
        })
      )
    )
  })

  describe("locking mismatches", () => {
    it.effect("object_unlock_twice", () =>
      expectReport(
        "unlock-unheld",
        Effect.gen(function* () {
          const { o } = setup()
          yield* WwMutex.lockNoCtx(o)
          yield* WwMutex.unlock(o)
          yield* WwMutex.unlock(o)
        })
      )
    )
    it.effect("unlock by a task that does not own it", () =>
      expectReport(
        "unlock-non-owner",
        Effect.gen(function* () {
          const { o } = setup()
          yield* WwMutex.lockNoCtx(o)
          const other = yield* Effect.forkChild(WwMutex.unlock(o))
          yield* Fiber.join(other)
        })
      )
    )
    it.effect("ctx used by another task", () =>
      expectReport(
        "ctx-foreign-task",
        Effect.gen(function* () {
          const { cls, o } = setup()
          const t = yield* WwMutex.acquireCtx(cls)
          yield* Fiber.join(yield* Effect.forkChild(WwMutex.lock(o, t)))
        })
      )
    )
  })

  describe("EDEADLK handling", () => {
    it.effect("edeadlk_normal: unlock all, then lock the contended one", () =>
      expectClean(
        Effect.gen(function* () {
          const { o, o2, t, holder } = yield* edeadlk
          yield* WwMutex.unlock(o)
          yield* holder.release
          yield* WwMutex.lock(o2, t)
          yield* WwMutex.lock(o, t)
          yield* WwMutex.unlockAll(t)
        })
      )
    )
    it.effect("edeadlk_normal_slow", () =>
      expectClean(
        Effect.gen(function* () {
          const { o, o2, t, holder } = yield* edeadlk
          yield* WwMutex.unlock(o)
          yield* holder.release
          yield* WwMutex.lockSlow(o2, t)
          yield* WwMutex.unlockAll(t)
        })
      )
    )
    const misuse: ReadonlyArray<
      [string, Kind, (s: Effect.Success<typeof edeadlk>) => Effect.Effect<unknown, unknown, Scope.Scope>]
    > = [
      ["edeadlk_no_unlock", "relock-contended-while-holding", ({ o2, t }) => WwMutex.lock(o2, t)],
      ["edeadlk_no_unlock_slow", "relock-contended-while-holding", ({ o2, t }) => WwMutex.lockSlow(o2, t)],
      ["edeadlk_acquire_more", "lock-after-deadlock", ({ o3, t }) => WwMutex.lock(o3, t)],
      ["edeadlk_acquire_more_slow", "lock-after-deadlock", ({ o3, t }) => WwMutex.lockSlow(o3, t)],
      [
        "edeadlk_acquire_wrong",
        "lock-after-deadlock",
        ({ o, o3, t }) => Effect.andThen(WwMutex.unlock(o), WwMutex.lock(o3, t))
      ],
      [
        "edeadlk_acquire_wrong_slow",
        "lock-after-deadlock",
        ({ o, o3, t }) => Effect.andThen(WwMutex.unlock(o), WwMutex.lockSlow(o3, t))
      ]
    ]
    it.effect.each(misuse)("%s", ([, kind, next]) =>
      expectReport(
        kind,
        Effect.gen(function* () {
          const s = yield* edeadlk
          yield* Effect.ensuring(next(s), Effect.andThen(WwMutex.unlockAll(s.t), s.holder.release))
        })
      )
    )
    it.effect("a trylock of another lock after -EDEADLK is reported too (ww_mutex_lock_acquired)", () =>
      expectReport(
        "lock-after-deadlock",
        Effect.gen(function* () {
          const s = yield* edeadlk
          yield* Effect.ensuring(WwMutex.trylock(s.o3, s.t), Effect.andThen(WwMutex.unlockAll(s.t), s.holder.release))
        })
      )
    )
    it.effect("a ctx-less lock that had to sleep still counts for the mixing check", () =>
      expectReport(
        "mixed-ctx-and-noctx",
        Effect.gen(function* () {
          const { cls, o, o2 } = setup()
          const gate = yield* Deferred.make<void>()
          const holder = yield* Effect.forkChild(
            WwMutex.lockNoCtx(o).pipe(Effect.andThen(Deferred.await(gate)), Effect.andThen(WwMutex.unlock(o)))
          )
          yield* Effect.repeat(Effect.yieldNow, { times: 10 })
          const waiter = yield* Effect.forkChild(Effect.andThen(WwMutex.lockNoCtx(o), Effect.never))
          yield* Effect.repeat(Effect.yieldNow, { times: 10 })
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(holder)
          yield* Effect.repeat(Effect.yieldNow, { times: 10 })
          assert.strictEqual(o.ownerTask, waiter.id, "the waiter got o after sleeping")
          yield* Fiber.interrupt(waiter)
          WwMutex.forceUnlockUnsafe(o)
          // same check in the locking task itself
          yield* WwMutex.lockNoCtx(o)
          const t = yield* WwMutex.acquireCtx(cls)
          yield* Effect.ensuring(
            WwMutex.lock(o2, t),
            Effect.sync(() => WwMutex.forceUnlockUnsafe(o))
          )
        })
      )
    )
    it.effect("edeadlk_acquire_more_edeadlk: a second -EDEADLK before backing off", () =>
      expectReport(
        "lock-after-deadlock",
        Effect.gen(function* () {
          const s = yield* edeadlk
          const h3 = yield* olderHolder(s.cls, s.o3)
          yield* Effect.ensuring(
            WwMutex.lock(s.o3, s.t),
            Effect.andThen(WwMutex.unlockAll(s.t), Effect.andThen(s.holder.release, h3.release))
          )
        })
      )
    )
  })

  describe("block | try | context matrix", () => {
    type Op = "block" | "try" | "context"
    const take = (op: Op, m: M, cls: WwMutex.WwClass, ctx: { t?: WwMutex.AcquireCtx }) =>
      Effect.gen(function* () {
        if (op === "block") yield* WwMutex.lockNoCtx(m)
        else if (op === "try") assert.isDefined(yield* WwMutex.trylock(m))
        else {
          ctx.t ??= yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lock(m, ctx.t)
        }
      })
    const table: ReadonlyArray<[Op, Op, Kind | "ok"]> = [
      ["context", "block", "mixed-ctx-and-noctx"],
      ["context", "try", "ok"],
      ["context", "context", "ok"],
      ["try", "block", "same-class-nesting"],
      ["try", "try", "ok"],
      ["try", "context", "mixed-ctx-and-noctx"],
      ["block", "block", "same-class-nesting"],
      ["block", "try", "ok"],
      ["block", "context", "mixed-ctx-and-noctx"]
    ]
    it.effect.each(table)("%s then %s -> %s", ([first, second, expected]) => {
      const body = Effect.gen(function* () {
        const { cls, o, o2 } = setup()
        const ctx: { t?: WwMutex.AcquireCtx } = {}
        yield* take(first, o, cls, ctx)
        yield* Effect.ensuring(
          take(second, o2, cls, ctx),
          Effect.sync(() => {
            WwMutex.forceUnlockUnsafe(o2)
            WwMutex.forceUnlockUnsafe(o)
          })
        )
      })
      return expected === "ok" ? expectClean(body) : expectReport(expected, body)
    })
  })
})
