/**
 * Lock witnesses (internal constructor). Only modules of this package mint `Held` values; a user
 * gets one only from a successful lock.
 *
 * @since 0.1.0
 */
import { Fiber } from "effect"
import type { Held } from "../Held.ts"
import { HeldTypeId } from "../Held.ts"
import type { WwMutex } from "./state.ts"

/** The runtime shape behind the public `Held<T>` interface. */
class HeldImpl<T> implements Held<T> {
  readonly [HeldTypeId]: { readonly _T: (_: never) => T } = variance
  readonly target: T
  readonly mutex: WwMutex
  constructor(target: T, mutex: WwMutex) {
    this.target = target
    this.mutex = mutex
  }
}

const variance = { _T: (_: never) => _ }

/**
 * Mints the witness that `mutex` (guarding `target`) is held. Cheap, but callers on hot paths
 * should cache one witness per object: its validity is checked against the mutex's owner at use
 * time, never stored in the witness.
 */
export const makeHeld = <T>(target: T, mutex: WwMutex): Held<T> => new HeldImpl(target, mutex)

/** The mutex behind a witness (`undefined` for a forged one). */
export const mutexOf = (held: Held<unknown>): WwMutex | undefined => (held instanceof HeldImpl ? held.mutex : undefined)

/**
 * Whether the witness is genuine and its mutex is owned by `task` right now (`undefined` or 0 name
 * no task, so an unlocked mutex is never "held").
 */
export const heldBy = (held: Held<unknown>, task: number | undefined): boolean =>
  task !== undefined && task !== 0 && mutexOf(held)?.owner === task

/** Whether the witness's mutex is owned by the running fiber. */
export const heldByCurrent = (held: Held<unknown>): boolean => heldBy(held, Fiber.getCurrent()?.id)
