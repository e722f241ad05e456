/**
 * Strict-mode (lockdep-style) configuration and the violation log (internal). Checks live in the
 * ww core; this module decides what a violation does: record it, and abort the operation (a
 * defect in the Effect shell) unless the configuration says "record only" and the kernel would
 * carry on after its WARN.
 *
 * @since 0.1.0
 */

/** Every misuse the checker knows, named for the kernel check that catches it. */
export type ViolationKind =
  | "lock-after-done"
  | "done-twice"
  | "done-after-fini"
  | "fini-twice"
  | "fini-with-locks-held"
  | "lock-after-fini"
  | "wrong-class"
  | "lock-after-deadlock"
  | "relock-contended-while-holding"
  | "slow-without-deadlock"
  | "unlock-unheld"
  | "unlock-non-owner"
  | "nested-ctx"
  | "mixed-ctx-and-noctx"
  | "same-class-nesting"
  | "recursive-lock"
  | "ctx-foreign-task"

/** One recorded violation. */
export interface Violation {
  readonly kind: ViolationKind
  /** The report in kernel terms (the WARN text a kernel developer would recognise). */
  readonly message: string
  /** The mutex involved, if any. */
  readonly lock: string | undefined
  /** The task that misbehaved. */
  readonly task: number
}

/** Violations after which continuing is impossible (the kernel would hang or use freed memory). */
const fatalKinds: ReadonlySet<ViolationKind> = new Set<ViolationKind>(["recursive-lock", "lock-after-fini"])

/** Global switches; per-ctx overrides are copied into the ctx at init. */
export const config = {
  strict: false,
  injection: false,
  onReport: "die" as "die" | "record",
  traceContention: false
}

/** Recorded violations, oldest first (bounded). */
export const log: Array<Violation> = []
const maxLog = 1024

let pendingAbort: Violation | undefined

/**
 * Records a violation; returns `true` when the operation must abort (the shell then dies with the
 * violation, see {@link takeAbort}). Always-on checks (outside strict mode) always abort.
 */
export const violation = (kind: ViolationKind, message: string, lock: string | undefined, task: number): boolean => {
  const v: Violation = { kind, message, lock, task }
  if (log.length >= maxLog) log.shift()
  log.push(v)
  const abort = !config.strict || config.onReport === "die" || fatalKinds.has(kind)
  if (abort) pendingAbort = v
  return abort
}

/** Takes the violation that made the last operation abort. */
export const takeAbort = (): Violation | undefined => {
  const v = pendingAbort
  pendingAbort = undefined
  return v
}

/** The defect a violating operation dies with: the model's lockdep splat / `DEBUG_LOCKS_WARN_ON`. */
export class LockdepViolation extends Error {
  readonly _tag = "LockdepViolation"
  readonly violation: Violation
  constructor(violation: Violation) {
    super(`lockdep: ${violation.kind}: ${violation.message}`)
    this.name = "LockdepViolation"
    this.violation = violation
  }
}
