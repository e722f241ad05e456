/**
 * Lockdep checks that are always on (they guard state integrity), record-only strict mode, and
 * the `CONFIG_DEBUG_WW_MUTEX_SLOWPATH` injection schedule.
 */
import { Deadlock } from "@drmkit/core"
import { Lockdep, Task, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, type Scope } from "effect"

type M = WwMutex.WwMutex

const setup = () => {
  const cls = WwMutex.WwClass.waitDie("ww_lockdep")
  return { cls, o: WwMutex.make(cls, "o") }
}

const violationOf = (exit: Exit.Exit<unknown, unknown>): Lockdep.Violation | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const d = exit.cause.reasons.find(Cause.isDieReason)?.defect
  return d instanceof Lockdep.LockdepViolation ? d.violation : undefined
}

describe("always-on checks (strict mode off)", () => {
  const plain = <A, E>(body: Effect.Effect<A, E, Scope.Scope>) =>
    Lockdep.withConfig({ strict: false }, Effect.exit(Effect.scoped(body)))
  it.effect("lock(NULL) on a mutex the task holds is a reported self-deadlock, not a hang", () =>
    Effect.gen(function* () {
      const { o } = setup()
      const exit = yield* plain(Effect.andThen(WwMutex.lockNoCtx(o), WwMutex.lockNoCtx(o)))
      assert.strictEqual(violationOf(exit)?.kind, "recursive-lock")
      assert.strictEqual(o.ownerTask, yield* Task.current)
      yield* WwMutex.unlock(o)
    })
  )
  it.effect("unlock of an unheld mutex dies and changes nothing", () =>
    Effect.gen(function* () {
      const { o } = setup()
      const exit = yield* plain(WwMutex.unlock(o))
      assert.strictEqual(violationOf(exit)?.kind, "unlock-unheld")
      assert.isFalse(o.isLocked)
    })
  )
  it.effect("strict-only misuse is not checked outside strict mode", () =>
    Effect.gen(function* () {
      const { cls, o } = setup()
      const exit = yield* plain(
        Effect.gen(function* () {
          const t = yield* WwMutex.acquireCtx(cls)
          yield* WwMutex.lockSlow(o, t)
          yield* WwMutex.acquireDone(t)
          yield* WwMutex.acquireDone(t)
          yield* WwMutex.unlockAll(t)
        })
      )
      assert.isTrue(Exit.isSuccess(exit))
    })
  )
  it.effect("record-only strict mode carries on like the kernel after its WARN", () =>
    Effect.gen(function* () {
      Lockdep.clearReports()
      const { cls, o } = setup()
      const exit = yield* Lockdep.withConfig(
        { strict: true, onReport: "record" },
        Effect.exit(
          Effect.scoped(
            Effect.gen(function* () {
              const t = yield* WwMutex.acquireCtx(cls)
              yield* WwMutex.acquireDone(t)
              yield* WwMutex.lock(o, t)
              yield* WwMutex.unlock(o)
            })
          )
        )
      )
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(
        Lockdep.reports().map((r) => r.kind),
        ["lock-after-done"]
      )
    })
  )
})

describe("per-ctx strict mode (global switch off)", () => {
  it.effect("a strict ctx still sees ctx-less locks its task holds (mixing check)", () =>
    Effect.gen(function* () {
      const { cls, o } = setup()
      const o2 = WwMutex.make(cls, "o2")
      const exit = yield* Lockdep.withConfig(
        { strict: false },
        Effect.exit(
          Effect.scoped(
            Effect.gen(function* () {
              yield* WwMutex.lockNoCtx(o)
              const t = yield* WwMutex.acquireCtx(cls, { strict: true })
              yield* Effect.ensuring(WwMutex.lock(o2, t), WwMutex.unlock(o))
            })
          )
        )
      )
      assert.strictEqual(violationOf(exit)?.kind, "mixed-ctx-and-noctx")
      assert.isFalse(o.isLocked || o2.isLocked)
    })
  )
})

describe("ownership is per task (fini, done, unlock check the current task)", () => {
  it.effect("ww_acquire_fini from another task is reported and releases nothing", () =>
    Effect.gen(function* () {
      const { cls, o } = setup()
      const t = yield* WwMutex.acquireInit(cls)
      yield* WwMutex.lock(o, t)
      const exit = yield* Lockdep.withConfig(
        { strict: false },
        Effect.flatMap(Effect.forkChild(WwMutex.acquireFini(t)), Fiber.await)
      )
      assert.strictEqual(violationOf(exit)?.kind, "ctx-foreign-task")
      assert.isFalse(t.isFinished, "the owner's ctx is still live")
      assert.strictEqual(o.lockingCtx, t, "the owner's lock was not released by the other task")
      yield* WwMutex.unlockAll(t)
      yield* WwMutex.acquireFini(t)
      assert.isTrue(t.isFinished)
    })
  )
  it.effect("ww_acquire_done from another task is a strict-mode report", () =>
    Effect.gen(function* () {
      const { cls } = setup()
      const t = yield* WwMutex.acquireInit(cls, { strict: true })
      const exit = yield* Lockdep.withConfig(
        { strict: true, onReport: "die" },
        Effect.flatMap(Effect.forkChild(WwMutex.acquireDone(t)), Fiber.await)
      )
      assert.strictEqual(violationOf(exit)?.kind, "ctx-foreign-task")
      assert.isFalse(t.isDone)
      yield* WwMutex.acquireDone(t)
      assert.isTrue(t.isDone)
      yield* WwMutex.acquireFini(t)
    })
  )
})

describe("deadlock injection schedule (CONFIG_DEBUG_WW_MUTEX_SLOWPATH)", () => {
  it("interval grows 1, 3, 10, 35, 122, 427, 1494 and saturates at UINT_MAX", () => {
    const seq = [1]
    for (let i = 0; i < 6; i++) seq.push(Lockdep.nextInjectionInterval(seq[seq.length - 1] as number))
    assert.deepStrictEqual(seq, [1, 3, 10, 35, 122, 427, 1494])
    assert.strictEqual(Lockdep.nextInjectionInterval(0xffffffff / 4 + 1), 0xffffffff)
  })
  it.effect("never injected: trylocks and the first lock, even with the countdown at 0", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("inject-try")
      cls.stamp = 15 // next ctx gets stamp 16: countdown 16 & 0xf = 0
      const locks = Array.from({ length: 40 }, (_, i) => WwMutex.make(cls, `t${i}`))
      const t = yield* WwMutex.acquireCtx(cls, { injection: true })
      for (const m of locks) assert.isDefined(yield* WwMutex.trylock(m, t), `trylock ${m.name} injected`)
      assert.strictEqual(t.acquired, 40)
      yield* WwMutex.unlockAll(t)
      yield* WwMutex.lock(locks[0] as M, t)
      const e = yield* Effect.flip(WwMutex.lock(locks[1] as M, t))
      assert.instanceOf(e, Deadlock, "countdown 0: the first eligible lock is injected")
      yield* WwMutex.unlockAll(t)
    })
  )
  it.effect("first injection after (stamp & 0xf) + 1 eligible locks, then per interval", () =>
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("inject")
      cls.stamp = 4 // next ctx gets stamp 5: countdown 5
      const locks = Array.from({ length: 64 }, (_, i) => WwMutex.make(cls, `i${i}`))
      const t = yield* WwMutex.acquireCtx(cls, { injection: true })
      assert.strictEqual(t.stamp, 5)
      const injectedAt: Array<number> = []
      let eligible = 0
      yield* WwMutex.lock(locks[0] as M, t) // first lock: never injected
      for (let i = 1; i < locks.length; i++) {
        const m = locks[i] as M
        eligible++
        const r = yield* Effect.result(WwMutex.lock(m, t))
        if (r._tag === "Failure") {
          assert.instanceOf(r.failure, Deadlock)
          assert.isFalse(m.isLocked, "the injected mutex is unlocked again")
          injectedAt.push(eligible)
          yield* WwMutex.unlockAll(t)
          yield* WwMutex.lockSlow(m, t)
          eligible = 0
        }
      }
      // countdown 5 -> fires on the 6th eligible lock; then interval 3 -> 4th; then 10 -> 11th; 35 -> 36th
      assert.deepStrictEqual(injectedAt, [6, 4, 11, 36])
      yield* WwMutex.unlockAll(t)
    })
  )
})
