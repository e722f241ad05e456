/**
 * How an interruptible fence wait learns that its task got a signal (internal adapter over the
 * task module's signal API, so the fence code has one narrow dependency).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Task from "../Task.ts"

/** The running task's signal state, as seen by a sleeping fence waiter. */
export interface SignalPort {
  /** A signal is pending for the task (`signal_pending(current)`). */
  readonly pending: () => boolean
  /** Registers a waker called when the task is signalled; returns the unregister function. */
  readonly onSignal: (wake: () => void) => () => void
}

/** The port of the current task. */
export const currentSignalPort: Effect.Effect<SignalPort> = Effect.map(Task.current, (task) => ({
  pending: () => Task.hasPendingSignal(task),
  onSignal: (wake) => Task.onSignal(task, wake)
}))
