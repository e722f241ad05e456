/**
 * A seeded deterministic scheduler for lock-protocol interleavings.
 *
 * Effect fibers are cooperative: which fiber runs next, and where a running fiber yields, is
 * decided by the runtime's `Scheduler`. {@link Deterministic} replaces it with one run queue for
 * all fibers from which a seeded PRNG picks the next task, and it makes fibers yield at
 * PRNG-chosen operation boundaries. The same seed therefore replays the same interleaving (as long
 * as the program does not depend on real time: use yields and locks, not `Effect.sleep`). A
 * property checked over many seeds ({@link check}) names the failing seed, and
 * `DRMKIT_SEED=<n>` replays just that one.
 *
 * Use it to test your own lock protocols (the kernel's ABBA / cycle / drm_exec contention
 * scenarios are written this way in this package's tests).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Scheduler } from "@drmkit/resv-locking"
 *
 * const property = (s: Scheduler.Deterministic) =>
 *   Effect.gen(function* () {
 *     // fork fibers that lock things; s.note("...") records events into the trace
 *   })
 * const test = Scheduler.check({ seeds: 200 }, property) // fails with SeedFailure naming the seed
 * ```
 *
 * @since 0.1.0
 */
import { Data, Effect, Scheduler as EffectScheduler, Exit, type Fiber } from "effect"

/**
 * A seeded pseudo-random generator (mulberry32) of numbers in [0, 1): small, fast, good enough to
 * pick interleavings. The scheduler picks with it; use it for workloads (which locks, which order)
 * that must replay with the same seed.
 *
 * @since 0.1.0
 * @category running
 */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Options of {@link Deterministic}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Probability that a running fiber yields at an operation boundary (default 0.05). */
  readonly yieldProbability?: number
}

/**
 * The deterministic scheduler: a single run queue, a seeded pick of the next task, seeded yield
 * points. `trace` holds the events noted by the program, `fingerprint` hashes every pick.
 *
 * @since 0.1.0
 * @category models
 */
export class Deterministic implements EffectScheduler.Scheduler, EffectScheduler.SchedulerDispatcher {
  readonly executionMode = "async" as const
  readonly seed: number
  /** Events noted with {@link Deterministic.note}, in order. */
  readonly trace: Array<string> = []
  /** Number of scheduling decisions taken. */
  picks = 0
  /** FNV-1a hash of every decision (which queued task ran, where fibers yielded). */
  fingerprint = 0x811c9dc5
  private readonly random: () => number
  private readonly yieldProbability: number
  private readonly tasks: Array<() => void> = []
  private pending = false

  constructor(seed: number, options?: Options) {
    this.seed = seed
    this.random = prng(seed)
    this.yieldProbability = options?.yieldProbability ?? 0.05
  }

  /** Records an event in the trace (e.g. "t1 lock A"). */
  note(event: string): void {
    this.trace.push(event)
  }

  private mix(x: number): void {
    this.fingerprint = Math.imul(this.fingerprint ^ x, 0x01000193) >>> 0
  }

  /** Seeded yield points. */
  shouldYield(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    if (fiber.currentOpCount < 2) return false
    const y = this.random() < this.yieldProbability
    if (y) this.mix(0xffff)
    return y
  }

  /** One dispatcher (this scheduler) for every fiber, so the pick spans all of them. */
  makeDispatcher(): EffectScheduler.SchedulerDispatcher {
    return this
  }

  /** Queues a task; the queue is drained on the next macrotask. */
  scheduleTask(task: () => void, _priority: number): void {
    this.tasks.push(task)
    if (!this.pending) {
      this.pending = true
      setImmediate(() => this.flush())
    }
  }

  /** Runs queued tasks, in seeded random order, until none is left. */
  flush(): void {
    this.pending = false
    const tasks = this.tasks
    while (tasks.length > 0) {
      const i = Math.floor(this.random() * tasks.length)
      const task = tasks[i] as () => void
      tasks.splice(i, 1)
      this.picks++
      this.mix(i)
      task()
    }
  }
}

/**
 * A deterministic scheduler for `seed`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (seed: number, options?: Options): Deterministic => new Deterministic(seed, options)

/**
 * Runs `effect` (and every fiber it forks) on `scheduler`.
 *
 * @since 0.1.0
 * @category running
 */
export const withScheduler = <A, E, R>(
  scheduler: Deterministic,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => Effect.provideService(effect, EffectScheduler.Scheduler, scheduler)

/**
 * The outcome of one seeded run.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunResult<A, E> {
  readonly seed: number
  readonly exit: Exit.Exit<A, E>
  readonly trace: ReadonlyArray<string>
  readonly fingerprint: number
  readonly picks: number
}

/**
 * Runs `program` on a fresh scheduler for `seed` and returns its exit with the trace.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <A, E, R>(
  seed: number,
  program: (scheduler: Deterministic) => Effect.Effect<A, E, R>,
  options?: Options
): Effect.Effect<RunResult<A, E>, never, R> =>
  Effect.suspend(() => {
    const s = make(seed, options)
    return Effect.map(Effect.exit(withScheduler(s, program(s))), (exit) => ({
      seed,
      exit,
      trace: s.trace,
      fingerprint: s.fingerprint,
      picks: s.picks
    }))
  })

/**
 * A property failed for `seed`; `replay` says how to run just that seed again.
 *
 * @since 0.1.0
 * @category errors
 */
export class SeedFailure extends Data.TaggedError("SeedFailure")<{
  readonly seed: number
  readonly trace: ReadonlyArray<string>
  readonly cause: unknown
}> {
  override get message(): string {
    return `interleaving property failed with seed ${this.seed} — replay with DRMKIT_SEED=${this.seed} or Scheduler.run(${this.seed}, ...): ${String(this.cause)}`
  }
}

/**
 * Checks `property` on `seeds` consecutive seeds (from `firstSeed`, default 1; or only the seed in
 * the `DRMKIT_SEED` environment variable). The first failing seed is printed and returned as a
 * {@link SeedFailure}; failures and defects of the property both count.
 *
 * @since 0.1.0
 * @category running
 */
export const check = <E, R>(
  options: {
    readonly seeds: number
    readonly firstSeed?: number
    readonly scheduler?: Options
    readonly quiet?: boolean
  },
  property: (scheduler: Deterministic) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, SeedFailure, R> =>
  Effect.gen(function* () {
    const env = typeof process === "undefined" ? undefined : process.env.DRMKIT_SEED
    const first = env !== undefined && env !== "" ? Number(env) : (options.firstSeed ?? 1)
    const count = env !== undefined && env !== "" ? 1 : options.seeds
    for (let seed = first; seed < first + count; seed++) {
      const r = yield* run(seed, property, options.scheduler)
      if (Exit.isFailure(r.exit)) {
        const failure = new SeedFailure({ seed, trace: r.trace, cause: r.exit.cause })
        if (options.quiet !== true) console.error(failure.message)
        return yield* Effect.fail(failure)
      }
    }
  })

/**
 * An explicit yield point: lets the scheduler pick another fiber here.
 *
 * @since 0.1.0
 * @category running
 */
export const yieldPoint: Effect.Effect<void> = Effect.yieldNow
