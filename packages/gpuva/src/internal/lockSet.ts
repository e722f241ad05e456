/**
 * One ww transaction over a set of reservation objects (the drm_exec loop, with
 * `DRM_EXEC_IGNORE_DUPLICATES`): lock everything with one acquire context; on `Deadlock` unlock
 * all (reverse order), slow-lock the contended object and retry with the same ticket; reserve
 * fence slots on every object; unlock everything when the scope closes.
 */
import { Deadlock, type Invalid } from "@drmkit/core"
import { DmaResv, type Held, WwMutex } from "@drmkit/resv-locking"
import { Effect, type Scope } from "effect"

type Witness = Held.Held<DmaResv.DmaResv>

const unlockAll = (held: ReadonlyArray<Witness>) =>
  Effect.forEach([...held].reverse(), (h) => DmaResv.unlock(h), { discard: true })

/** Locks every resv of `resvs` (duplicates ignored) in one transaction; scoped. */
export const lockResvs = (
  resvs: Iterable<DmaResv.DmaResv>,
  numFences: number
): Effect.Effect<ReadonlyMap<DmaResv.DmaResv, Witness>, Invalid, Scope.Scope> =>
  Effect.gen(function* () {
    const wanted = [...new Set(resvs)]
    const ctx = yield* WwMutex.acquireCtx(WwMutex.reservationWwClass)
    let contended: DmaResv.DmaResv | undefined
    let held: Array<Witness> = []
    for (;;) {
      held = []
      if (contended !== undefined) {
        held.push(yield* DmaResv.lockSlow(contended, ctx))
      }
      let backoff: DmaResv.DmaResv | undefined
      for (const r of wanted) {
        if (r === contended) continue
        const got = yield* Effect.result(DmaResv.lock(r, ctx))
        if (got._tag === "Success") {
          held.push(got.success)
          continue
        }
        const e = got.failure
        if (e instanceof Deadlock) {
          backoff = r
          break
        }
        if (e._tag === "Already") continue
        yield* unlockAll(held)
        return yield* Effect.fail(e)
      }
      if (backoff === undefined) break
      yield* unlockAll(held)
      contended = backoff
    }
    const locked = held
    yield* Effect.addFinalizer(() => unlockAll(locked))
    yield* WwMutex.acquireDone(ctx)
    for (const h of locked) yield* DmaResv.reserveFences(h, numFences)
    return new Map(locked.map((h) => [h.target, h]))
  })
