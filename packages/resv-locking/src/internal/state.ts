/**
 * The ww_mutex data model (internal): classes, acquire contexts, mutexes and waiters as plain,
 * synchronous objects. The public `WwMutex` module re-exports the three public classes; their
 * mutable fields are internal (marked `@internal`) and only the ww core writes them.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import type { Held } from "../Held.ts"

/**
 * The two ww algorithms. `DEFINE_WD_CLASS` = wait-die, `DEFINE_WW_CLASS` = wound-wait.
 *
 * @since 0.1.0
 * @category models
 */
export type Algorithm = "wait-die" | "wound-wait"

/**
 * A ww class (`struct ww_class`): groups the mutexes that may be taken together under one acquire
 * context, owns the stamp counter (first stamp is 1) and the algorithm.
 *
 * @since 0.1.0
 * @category models
 */
export class WwClass {
  /** Name, as in `DEFINE_WD_CLASS(name)`; lockdep reports use it. */
  readonly name: string
  /** Wait-die or wound-wait. */
  readonly algorithm: Algorithm
  /** @internal */
  readonly isWaitDie: boolean
  /** @internal the last stamp handed out (u32, wraps) */
  stamp = 0
  /** @internal the live ctx of each task (nested-ctx check) */
  readonly ctxByTask = new Map<number, AcquireCtx>()
  /** @internal ctx-less locks of this class held per task (the strict mixing checks) */
  readonly noCtxHeldByTask = new Map<number, number>()

  private constructor(name: string, algorithm: Algorithm) {
    this.name = name
    this.algorithm = algorithm
    this.isWaitDie = algorithm === "wait-die"
  }

  /** A wait-die class. Models `DEFINE_WD_CLASS()`. */
  static waitDie(name: string): WwClass {
    return new WwClass(name, "wait-die")
  }

  /** A wound-wait class. Models `DEFINE_WW_CLASS()`. */
  static woundWait(name: string): WwClass {
    return new WwClass(name, "wound-wait")
  }
}

/**
 * An acquire context (`struct ww_acquire_ctx`, the "ticket"): one transaction of one task over
 * mutexes of one class. Its stamp (age) is kept across backoffs — that is what makes it win
 * eventually.
 *
 * @since 0.1.0
 * @category models
 */
export class AcquireCtx {
  readonly cls: WwClass
  /** Ticket number; smaller = older = wins. */
  readonly stamp: number
  /** The task that owns the context (`ctx->task`). */
  readonly task: number
  /** @internal locks held through this ctx, in lock order */
  readonly held: Array<WwMutex> = []
  /** @internal */
  wounded = false
  /** @internal */
  done = false
  /** @internal */
  finished = false
  /** @internal the mutex that caused the last `-EDEADLK` (`contending_lock`) */
  contending: WwMutex | undefined = undefined
  /** @internal the waiter this ctx sleeps in, so a wound can wake it */
  sleeping: Waiter | undefined = undefined
  /** @internal deadlock injection enabled */
  readonly inject: boolean
  /** @internal strict checks enabled */
  readonly strict: boolean
  /** @internal `deadlock_inject_countdown` */
  injectCountdown: number
  /** @internal `deadlock_inject_interval` */
  injectInterval = 1

  /** @internal */
  constructor(cls: WwClass, stamp: number, task: number, inject: boolean, strict: boolean) {
    this.cls = cls
    this.stamp = stamp
    this.task = task
    this.inject = inject
    this.strict = strict
    this.injectCountdown = stamp & 0xf
  }

  /** Number of mutexes held through this ctx (`ctx->acquired`). */
  get acquired(): number {
    return this.held.length
  }
  /** `ww_acquire_done()` was called. */
  get isDone(): boolean {
    return this.done
  }
  /** `ww_acquire_fini()` was called. */
  get isFinished(): boolean {
    return this.finished
  }
  /** Wound-wait: an older transaction wounded this one; it dies at its next contended lock. */
  get isWounded(): boolean {
    return this.wounded
  }
  /** The mutex of the last `-EDEADLK`, until the backoff's slow lock succeeds. */
  get contendingLock(): WwMutex | undefined {
    return this.contending
  }
}

/**
 * A wound/wait mutex (`struct ww_mutex`), bound to one class.
 *
 * @since 0.1.0
 * @category models
 */
export class WwMutex {
  readonly cls: WwClass
  readonly name: string
  /** @internal owning task, 0 when unlocked */
  owner = 0
  /** @internal the ctx holding it (`lock->ctx`), undefined when unlocked or locked without ctx */
  ctx: AcquireCtx | undefined = undefined
  /** @internal sleepers: ctx waiters in stamp order, ctx-less ones FIFO among them */
  readonly waiters: Array<Waiter> = []
  /** @internal the first waiter failed to get the lock after a wake-up: hand the next unlock to it */
  handoff = false
  /** @internal */
  destroyed = false
  /** @internal cached witness and its success effect (no allocation per lock) */
  heldValue: Held<WwMutex> | undefined = undefined
  /** @internal */
  heldEffect: Effect.Effect<Held<WwMutex>> | undefined = undefined

  /** Models `ww_mutex_init(lock, class)`. */
  constructor(cls: WwClass, name: string) {
    this.cls = cls
    this.name = name
  }

  /** Models `ww_mutex_is_locked()` (held by anyone — not a held-by-me check). */
  get isLocked(): boolean {
    return this.owner !== 0
  }
  /** The ctx holding the lock; undefined when unlocked or locked without a ctx. */
  get lockingCtx(): AcquireCtx | undefined {
    return this.ctx
  }
  /** The owning task, undefined when unlocked. */
  get ownerTask(): number | undefined {
    return this.owner === 0 ? undefined : this.owner
  }
  /** `ww_mutex_destroy()` was called. */
  get isDestroyed(): boolean {
    return this.destroyed
  }
  /** Number of sleeping waiters. */
  get waiterCount(): number {
    return this.waiters.length
  }
}

/**
 * A sleeping locker (`struct mutex_waiter`) (internal).
 *
 * @since 0.1.0
 */
export class Waiter {
  readonly mutex: WwMutex
  readonly ctx: AcquireCtx | undefined
  readonly task: number
  readonly interruptible: boolean
  /** Resumes the sleeping fiber; set only while it is suspended. */
  wake: (() => void) | undefined = undefined
  /** A wake-up arrived while the fiber was between its check and its sleep: do not sleep. */
  kicked = false
  /** Woken by an unlock (not by a die/wound/signal). */
  unlockWoken = false
  /** Ownership was handed to this waiter while it slept. */
  granted = false
  constructor(mutex: WwMutex, ctx: AcquireCtx | undefined, task: number, interruptible: boolean) {
    this.mutex = mutex
    this.ctx = ctx
    this.task = task
    this.interruptible = interruptible
  }
}

/** Lock-attempt results of the synchronous core. */
export const Code = {
  OK: 0,
  DEADLK: 1,
  ALREADY: 2,
  BUSY: 3,
  DESTROYED: 4,
  WRONG_CLASS: 5,
  INTR: 6,
  VIOLATION: 7,
  SLEEP: 8
} as const

/** One of {@link Code}. */
export type Code = (typeof Code)[keyof typeof Code]
