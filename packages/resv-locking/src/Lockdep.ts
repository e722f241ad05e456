/**
 * Strict mode (lockdep / `CONFIG_DEBUG_WW_MUTEXES` style checks) and deadlock injection
 * (`CONFIG_DEBUG_WW_MUTEX_SLOWPATH`).
 *
 * Strict mode reports, in kernel terms, the ww misuse the kernel's debug checks catch: lock after
 * `ww_acquire_done()`, fini with locks held, done/fini twice, a ctx of another class (`Invalid`),
 * other locks taken after `-EDEADLK` before backing off, a slow lock without a preceding
 * `-EDEADLK`, nested contexts of one class in one task, blocking ctx-less locks mixed with ctx
 * locks of the class (either order), two blocking ctx-less locks of one class (lockdep's
 * "possible recursive locking"), a ctx locked with or `ww_acquire_done()` by a foreign task. Always
 * on (strict or not), because the model could not continue otherwise: unlock of an unheld lock or
 * by a non-owner task, `ww_acquire_fini()` by a task that does not own the ctx, recursive
 * (self-deadlocking) locks, locking with a finished ctx.
 *
 * A report is recorded ({@link reports}) and the offending operation dies with a
 * {@link LockdepViolation} defect; with `onReport: "record"` strict-mode reports are only recorded
 * and the operation carries on as the kernel does after its WARN.
 *
 * Injection gives every acquire context the kernel's schedule: countdown `stamp & 0xf`, then a
 * synthetic `Deadlock` on the next successful `lock` that leaves more than one lock held, with the
 * interval growing 1, 3, 10, 35, 122, ... — so every backoff path gets exercised.
 *
 * Both switches are global defaults that each acquire context copies at init; a ctx can override
 * them (`WwMutex.acquireCtx(cls, { injection: true, strict: false })`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lockdep } from "@drmkit/resv-locking"
 *
 * const checked = <A, E, R>(test: Effect.Effect<A, E, R>) =>
 *   Lockdep.withConfig({ strict: true, injection: true }, test)
 * ```
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { config, log, type Violation } from "./internal/lockdep.ts"
import { nextInterval } from "./internal/ww.ts"

export {
  /**
   * The defect a violating operation dies with; `violation` carries the report.
   *
   * @since 0.1.0
   */
  LockdepViolation,
  /**
   * One recorded report.
   *
   * @since 0.1.0
   */
  type Violation,
  /**
   * The kinds of misuse the checker reports.
   *
   * @since 0.1.0
   */
  type ViolationKind
} from "./internal/lockdep.ts"

/**
 * The switches.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  /** Strict (lockdep-style) checks. Default `false`. */
  readonly strict: boolean
  /** Deadlock injection with the kernel's countdown schedule. Default `false`. */
  readonly injection: boolean
  /** In strict mode: `"die"` (default) aborts the offending operation, `"record"` only records. */
  readonly onReport: "die" | "record"
  /**
   * Emit ww_mutex contention to the fiber's `CurrentTraceSink` (`@drmkit/core`): an `X` slice per
   * contended (sleeping) lock with its outcome, an instant per `-EDEADLK` backoff (injected or not).
   * Default `false`. The uncontended path never traces.
   */
  readonly traceContention: boolean
}

/**
 * The current global switches.
 *
 * @since 0.1.0
 * @category config
 */
export const current = (): Config => ({ ...config })

/**
 * Sets global switches (copied by acquire contexts created afterwards).
 *
 * @since 0.1.0
 * @category config
 */
export const configure = (options: Partial<Config>): void => {
  if (options.strict !== undefined) config.strict = options.strict
  if (options.injection !== undefined) config.injection = options.injection
  if (options.onReport !== undefined) config.onReport = options.onReport
  if (options.traceContention !== undefined) config.traceContention = options.traceContention
}

/**
 * Runs `effect` with the given switches and restores the previous ones afterwards (global, not
 * fiber-local: meant for tests, which run one at a time per worker).
 *
 * @since 0.1.0
 * @category config
 */
export const withConfig = <A, E, R>(options: Partial<Config>, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const prev = current()
      configure(options)
      return prev
    }),
    () => effect,
    (prev) => Effect.sync(() => configure(prev))
  )

/**
 * Reports recorded so far (oldest first, the last 1024).
 *
 * @since 0.1.0
 * @category reports
 */
export const reports = (): ReadonlyArray<Violation> => [...log]

/**
 * Forgets the recorded reports.
 *
 * @since 0.1.0
 * @category reports
 */
export const clearReports = (): void => {
  log.length = 0
}

/**
 * The kernel's injection interval growth (`interval = interval*2 + interval + interval/2`,
 * capped at `UINT_MAX`): 1 → 3 → 10 → 35 → 122 → 427 → 1494 ...
 *
 * @since 0.1.0
 * @category injection
 */
export const nextInjectionInterval = (interval: number): number => nextInterval(interval)
