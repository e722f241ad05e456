/**
 * Task identity and signals.
 *
 * The kernel checks lock ownership against `current`, the running task. drmkit's task is the
 * Effect fiber: {@link current} is the id of the running fiber, and every ownership check
 * (`ww_mutex_unlock`, `ww_acquire_fini`, `dma_resv_assert_held`) compares against it. A forked
 * child fiber is a different task, exactly like a kernel thread spawned by a task.
 *
 * Signals model `signal_pending(current)`: {@link signal} marks a task as signalled and wakes every
 * interruptible sleeper it has. Interruptible ww locks then fail with `Interrupted` (`-EINTR`),
 * interruptible fence waits with `RestartSys` (`-ERESTARTSYS`). The signal stays pending until
 * {@link clearSignal} (the kernel delivers it on the return to user space). Fiber interruption is
 * the stronger "kill": every wait, interruptible or not, is abandoned and the scope releases.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Task } from "@drmkit/resv-locking"
 *
 * const program = Effect.gen(function* () {
 *   const me = yield* Task.current
 *   yield* Task.signal(me)
 *   return Task.hasPendingSignal(me) // true
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Fiber } from "effect"
import * as signals from "./internal/signals.ts"

/**
 * A task id: the id of an Effect fiber (`current->pid`, loosely). Fiber ids start at 1, so `0`
 * never names a task.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskId = number

/**
 * The id of the running task (fiber). Models `current`.
 *
 * @since 0.1.0
 * @category task
 */
export const current: Effect.Effect<TaskId> = Effect.withFiberSucceed((fiber) => fiber.id)

/**
 * The id of the running task when called synchronously from inside a fiber, `undefined` outside
 * any fiber (plain synchronous code, e.g. a benchmark loop).
 *
 * @since 0.1.0
 * @category task
 */
export const currentUnsafe = (): TaskId | undefined => Fiber.getCurrent()?.id

/**
 * Sends a signal to `task`: marks it pending and wakes its interruptible sleepers. Models
 * `send_sig()` as far as `signal_pending()` and `wake_up_state(TASK_INTERRUPTIBLE)` go.
 *
 * @since 0.1.0
 * @category signals
 */
export const signal = (task: TaskId): Effect.Effect<void> => Effect.sync(() => signals.raise(task))

/**
 * Synchronous {@link signal}, for plain code and tests.
 *
 * @since 0.1.0
 * @category signals
 */
export const signalUnsafe = (task: TaskId): void => signals.raise(task)

/**
 * Registers `wake` to be called when `task` is signalled; returns the unregister function. Used by
 * interruptible sleepers (ww lock waiters, fence waits) to re-check `signal_pending()`.
 *
 * @since 0.1.0
 * @category signals
 */
export const onSignal = (task: TaskId, wake: () => void): (() => void) => signals.onSignal(task, wake)

/**
 * Whether a signal is pending for `task`. Models `signal_pending(task)`.
 *
 * @since 0.1.0
 * @category signals
 */
export const hasPendingSignal = (task: TaskId): boolean => signals.pending(task)

/**
 * Clears a pending signal of `task` (the signal was "delivered"). Returns whether one was pending.
 *
 * @since 0.1.0
 * @category signals
 */
export const clearSignal = (task: TaskId): boolean => signals.clear(task)

/**
 * Whether a signal is pending for the running task. Models `signal_pending(current)`.
 *
 * @since 0.1.0
 * @category signals
 */
export const signalPending: Effect.Effect<boolean> = Effect.withFiberSucceed((fiber) => signals.pending(fiber.id))
