/**
 * Lock witnesses: a `Held<T>` value is the proof that the lock guarding `T` is held.
 *
 * Every operation the kernel guards with `lockdep_assert_held()` / `dma_resv_assert_held()` takes a
 * `Held<T>` parameter, so forgetting the lock is a compile error (the Rust-for-Linux `Guard` idea).
 * Only this package mints witnesses (from a successful lock). A witness outlives the hold it
 * proves — it is a value — so every consumer still asserts at run time that the lock's owner is the
 * current task ({@link isHeld}, {@link assertHeld}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Held, WwMutex } from "@drmkit/resv-locking"
 *
 * const cls = WwMutex.WwClass.waitDie("demo")
 * const m = WwMutex.make(cls, "a")
 * const program = Effect.gen(function* () {
 *   const held = yield* WwMutex.lockNoCtx(m)
 *   Held.isHeld(held) // true: owner task === current task
 *   yield* WwMutex.release(held)
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { heldByCurrent, mutexOf } from "./internal/held.ts"

/**
 * Brand key of {@link Held}; there is no way to build one outside this package.
 *
 * @since 0.1.0
 * @category symbols
 */
export const HeldTypeId: unique symbol = Symbol.for("@drmkit/resv-locking/Held")

/**
 * The witness that the lock guarding `target` is held by the task that locked it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Held<out T> {
  readonly [HeldTypeId]: { readonly _T: (_: never) => T }
  /** The locked object. */
  readonly target: T
}

/**
 * Whether the witness's lock is still held by the running task. Models `lockdep_is_held()` /
 * `dma_resv_held()` (which, unlike `is_locked`, is a held-by-me check). Call it from inside a
 * fiber; outside one no task is running and the answer is `false`.
 *
 * @since 0.1.0
 * @category assertions
 */
export const isHeld = (held: Held<unknown>): boolean => heldByCurrent(held)

/**
 * Asserts that the witness's lock is held by the running task; a defect otherwise (the kernel's
 * `lockdep_assert_held()` WARNs). Returns the target.
 *
 * @since 0.1.0
 * @category assertions
 */
export const assertHeld = <T>(held: Held<T>): Effect.Effect<T> =>
  Effect.suspend(() =>
    heldByCurrent(held)
      ? Effect.succeed(held.target)
      : Effect.die(
          new Error(`lockdep_assert_held: ${mutexOf(held)?.name ?? "<forged witness>"} is not held by this task`)
        )
  )
