/**
 * Per-task signal state (internal): a pending flag and the wakers of the task's interruptible
 * sleepers. Entries exist only while a signal is pending or a sleeper is registered.
 *
 * @since 0.1.0
 */

interface SignalState {
  pending: boolean
  readonly wakers: Set<() => void>
}

const states = new Map<number, SignalState>()

const stateOf = (task: number): SignalState => {
  let s = states.get(task)
  if (s === undefined) {
    s = { pending: false, wakers: new Set() }
    states.set(task, s)
  }
  return s
}

const gc = (task: number, s: SignalState): void => {
  if (!s.pending && s.wakers.size === 0) states.delete(task)
}

/** Marks `task` signalled and wakes its sleepers (each waker runs once per signal). */
export const raise = (task: number): void => {
  const s = stateOf(task)
  s.pending = true
  for (const wake of [...s.wakers]) wake()
}

/** Whether `task` has a pending signal. */
export const pending = (task: number): boolean => states.get(task)?.pending === true

/** Clears the pending signal of `task`; returns whether one was pending. */
export const clear = (task: number): boolean => {
  const s = states.get(task)
  if (s === undefined || !s.pending) return false
  s.pending = false
  gc(task, s)
  return true
}

/** Registers a waker for `task`; returns the unregister function. */
export const onSignal = (task: number, wake: () => void): (() => void) => {
  const s = stateOf(task)
  s.wakers.add(wake)
  return () => {
    s.wakers.delete(wake)
    gc(task, s)
  }
}
