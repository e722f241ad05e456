/**
 * `dma_fence`: a one-shot completion marker of some (simulated) hardware work, identified by a
 * fence context (a timeline) and a sequence number ordered within that context.
 *
 * ```ts
 * import { DmaFence } from "@drmkit/resv-locking"
 * import { Effect } from "effect"
 *
 * const ring = DmaFence.contextAlloc("gfx ring 0")
 * const job = DmaFence.make(ring)                    // seqno 1 on that timeline
 * const program = Effect.gen(function* () {
 *   yield* Effect.forkChild(DmaFence.signal(job))    // the "hardware" completes the job
 *   const left = yield* DmaFence.wait(job, { interruptible: true, timeoutMs: 100 })
 *   // left > 0: signalled with 'left' ms to spare; 0 would mean the wait timed out
 * })
 * ```
 *
 * Seqnos use 64-bit semantics (no 32-bit wrap) restricted to JavaScript's safe integers.
 * Plain methods on {@link DmaFence} are synchronous (callable from any callback, like the kernel's
 * IRQ-context signalling); the module functions are the Effect shell and emit `dma_fence` trace
 * events to `CurrentTraceSink` when it is enabled.
 *
 * @since 0.1.0
 */
import { CurrentTraceSink, Invalid, type RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import { waitImpl } from "./internal/fenceWait.ts"
import { instant } from "./internal/trace.ts"

/**
 * A fence context (timeline): fences of one context signal in seqno order. Models the u64 returned
 * by `dma_fence_context_alloc()` plus the timeline name drivers report.
 *
 * @since 0.1.0
 * @category models
 */
export interface FenceContext {
  readonly id: number
  readonly name: string
}

let nextContextId = 1
const lastSeqno = new WeakMap<FenceContext, number>()

/**
 * Allocates a new fence context. Ids start at 1 and are unique for the process (context 0 is the
 * stub's). Models `dma_fence_context_alloc(1)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const contextAlloc = (name: string): FenceContext => {
  const ctx: FenceContext = { id: nextContextId++, name }
  lastSeqno.set(ctx, 0)
  return ctx
}

const checkSeqno = (seqno: number): void => {
  if (!Number.isSafeInteger(seqno) || seqno < 0) {
    throw new Invalid({ what: "dma_fence seqno", reason: "must be a non-negative safe integer", value: seqno })
  }
}

/** A fence callback (`dma_fence_func_t`). Must not throw. */
type Callback = (f: DmaFence) => void

/**
 * A fence. Models `struct dma_fence` initialised by `dma_fence_init(fence, ops, lock, context,
 * seqno)`: it starts unsignalled and signals exactly once, optionally with an error.
 *
 * @throws Invalid when `seqno` is not a non-negative safe integer.
 * @since 0.1.0
 * @category models
 */
export class DmaFence {
  readonly context: FenceContext
  readonly seqno: number
  #signaled = false
  #error: Error | undefined = undefined
  #timestamp: number | undefined = undefined
  #callbacks: Array<Callback> | undefined = undefined

  constructor(context: FenceContext, seqno: number) {
    checkSeqno(seqno)
    this.context = context
    this.seqno = seqno
    if ((lastSeqno.get(context) ?? 0) < seqno) lastSeqno.set(context, seqno)
  }

  /** `dma_fence_is_signaled()`. */
  get isSignaled(): boolean {
    return this.#signaled
  }

  /** The error the fence was signalled with (`dma_fence_get_status() < 0`), if any. */
  get error(): Error | undefined {
    return this.#error
  }

  /** When it signalled (`performance.now()` ms), `undefined` while pending. */
  get timestamp(): number | undefined {
    return this.#timestamp
  }

  /**
   * `dma_fence_get_status()`: 0 while pending, 1 when signalled without error, -1 with an error.
   */
  get status(): -1 | 0 | 1 {
    return this.#signaled ? (this.#error === undefined ? 1 : -1) : 0
  }

  /**
   * Signals the fence (`dma_fence_set_error()` + `dma_fence_signal()`), then runs every pending
   * callback in registration order. Returns `false` (and changes nothing) when already signalled.
   */
  signal(error?: Error): boolean {
    if (this.#signaled) return false
    this.#signaled = true
    this.#error = error
    this.#timestamp = performance.now()
    const cbs = this.#callbacks
    this.#callbacks = undefined
    if (cbs !== undefined) for (const cb of cbs) cb(this)
    return true
  }

  /**
   * `dma_fence_add_callback()`: registers `cb` to run once the fence signals. Returns `false`
   * without registering when the fence is already signalled (the caller handles that case).
   */
  addCallback(cb: Callback): boolean {
    if (this.#signaled) return false
    if (this.#callbacks === undefined) this.#callbacks = [cb]
    else this.#callbacks.push(cb)
    return true
  }

  /** `dma_fence_remove_callback()`: `true` when `cb` was still pending and is now removed. */
  removeCallback(cb: Callback): boolean {
    const cbs = this.#callbacks
    if (cbs === undefined) return false
    const i = cbs.indexOf(cb)
    if (i < 0) return false
    cbs.splice(i, 1)
    return true
  }

  /** Number of callbacks (including sleeping waiters) still registered; 0 once signalled. */
  get callbackCount(): number {
    return this.#callbacks?.length ?? 0
  }

  /** `dma_fence_is_container()`: false for plain fences. */
  get isContainer(): boolean {
    return false
  }

  /** `context:seqno`, the way the kernel's fence tracepoints print it. */
  toString(): string {
    return `${this.context.name}#${this.context.id}:${this.seqno}`
  }
}

/**
 * Creates a fence on `context`. Without `seqno` the fence takes the next seqno of that context
 * (one past the highest seen). Models `dma_fence_init()`.
 *
 * @throws Invalid for a negative or fractional seqno.
 * @since 0.1.0
 * @category constructors
 */
export const make = (context: FenceContext, seqno?: number): DmaFence =>
  new DmaFence(context, seqno ?? (lastSeqno.get(context) ?? 0) + 1)

const stubContext: FenceContext = { id: 0, name: "stub" }
const stub = new DmaFence(stubContext, 0)
stub.signal()

/**
 * An already-signalled fence. Without a context: the shared stub (`dma_fence_get_stub()`,
 * context 0, seqno 0); with one: a fresh signalled fence on it
 * (`dma_fence_allocate_private_stub()`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const signaled = (context?: FenceContext): DmaFence => {
  if (context === undefined) return stub
  const f = make(context)
  f.signal()
  return f
}

/**
 * Signals `f` (optionally with an error) and emits a `dma_fence_signaled` trace event. `false`
 * when it was already signalled. Models `dma_fence_signal()`.
 *
 * @since 0.1.0
 * @category signalling
 */
export const signal = (f: DmaFence, error?: Error): Effect.Effect<boolean> =>
  Effect.flatMap(Effect.service(CurrentTraceSink), (sink) =>
    Effect.sync(() => {
      // the event precedes the callbacks (which may resume waiters), as the kernel tracepoint does
      if (sink.enabled && !f.isSignaled) {
        const args = { context: f.context.id, seqno: f.seqno }
        instant(
          sink,
          "dma_fence",
          "dma_fence_signaled",
          f.context.name,
          error ? { ...args, error: error.message } : args
        )
      }
      return f.signal(error)
    })
  )

const requireSameContext = (a: DmaFence, b: DmaFence): void => {
  if (a.context !== b.context) {
    throw new Invalid({
      what: "dma_fence_is_later",
      reason: `fences of different contexts are unordered (${a} vs ${b})`
    })
  }
}

/**
 * `dma_fence_is_later(a, b)`: `a` comes strictly after `b` on their common timeline.
 *
 * @throws Invalid when the fences belong to different contexts (the kernel WARNs).
 * @since 0.1.0
 * @category ordering
 */
export const isLater = (a: DmaFence, b: DmaFence): boolean => {
  requireSameContext(a, b)
  return a.seqno > b.seqno
}

/**
 * `dma_fence_is_later_or_same(a, b)`: like {@link isLater}, but also true for the same fence (and
 * the same seqno).
 *
 * @throws Invalid when the fences belong to different contexts.
 * @since 0.1.0
 * @category ordering
 */
export const isLaterOrSame = (a: DmaFence, b: DmaFence): boolean => {
  if (a === b) return true
  requireSameContext(a, b)
  return a.seqno >= b.seqno
}

/**
 * `dma_fence_is_container()`: true for fence arrays (which may not be added to a reservation).
 *
 * @since 0.1.0
 * @category guards
 */
export const isContainer = (f: DmaFence): boolean => f.isContainer

/**
 * Options of {@link wait}: the `intr` and `timeout` arguments of `dma_fence_wait_timeout()`.
 *
 * @since 0.1.0
 * @category waiting
 */
export interface WaitOptions {
  /** A signal to the task ends the wait with `RestartSys` (`intr = true`). Default false. */
  readonly interruptible?: boolean
  /** Budget in milliseconds; `Infinity` (the default) waits forever; 0 only polls. */
  readonly timeoutMs?: number
}

/**
 * Waits for `f`. Models `dma_fence_wait_timeout(f, intr, timeout)`: returns the remaining budget
 * in ms (> 0; `Infinity` without a timeout; 1 for a zero-timeout poll of a signalled fence), 0 when
 * the budget ran out, and fails with `RestartSys` when `interruptible` and the task has (or gets)
 * a pending signal. Fiber interruption always removes the waiter. Time comes from Effect's
 * `Clock`, so `TestClock` drives timeouts in tests.
 *
 * @returns remaining ms, or 0 on timeout; fails with `RestartSys` (interruptible waits only).
 * @since 0.1.0
 * @category waiting
 */
export const wait = (f: DmaFence, options: WaitOptions = {}): Effect.Effect<number, RestartSys> => waitImpl(f, options)

/**
 * Options of {@link FenceArray}: the `context`, `seqno` and `signal_on_any` arguments of
 * `dma_fence_array_create()`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FenceArrayOptions {
  /** Context of the array itself (default: a fresh one, as `dma_resv_get_singleton` does). */
  readonly context?: FenceContext
  /** Seqno on that context (default: the next one). */
  readonly seqno?: number
  /** Signal when the first component signals instead of when all have. */
  readonly signalOnAny?: boolean
}

/**
 * `struct dma_fence_array`: a container fence that signals when all (or, with `signalOnAny`, any)
 * of its components have signalled, carrying the first component error. Containers must not be
 * nested and must not be added to a reservation object (add the components instead).
 *
 * @throws Invalid when a component is itself a container.
 * @since 0.1.0
 * @category models
 */
export class FenceArray extends DmaFence {
  readonly fences: ReadonlyArray<DmaFence>
  readonly signalOnAny: boolean
  #pending: number
  #firstError: Error | undefined = undefined

  constructor(fences: ReadonlyArray<DmaFence>, options: FenceArrayOptions = {}) {
    const context = options.context ?? contextAlloc("dma_fence_array")
    super(context, options.seqno ?? (lastSeqno.get(context) ?? 0) + 1)
    for (const c of fences) {
      if (c.isContainer) {
        throw new Invalid({ what: "dma_fence_array", reason: "containers must not be nested", value: String(c) })
      }
    }
    this.fences = [...fences]
    this.signalOnAny = options.signalOnAny === true
    this.#pending = this.signalOnAny ? Math.min(1, fences.length) : fences.length
    if (this.#pending === 0) this.signal()
    for (const c of this.fences) {
      if (this.isSignaled) break
      if (!c.addCallback(this.#onComponent)) this.#onComponent(c)
    }
  }

  readonly #onComponent = (c: DmaFence): void => {
    if (this.isSignaled) return
    if (c.error !== undefined) this.#firstError ??= c.error
    if (--this.#pending > 0) return
    this.signal(this.#firstError)
    for (const other of this.fences) other.removeCallback(this.#onComponent)
  }

  override get isContainer(): boolean {
    return true
  }
}

/**
 * {@link FenceArray} with the bad-input case in the error channel. Models
 * `dma_fence_array_create()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeArray = (
  fences: ReadonlyArray<DmaFence>,
  options: FenceArrayOptions = {}
): Effect.Effect<FenceArray, Invalid> =>
  Effect.try({
    try: () => new FenceArray(fences, options),
    catch: (e) => (e instanceof Invalid ? e : new Invalid({ what: "dma_fence_array", reason: String(e) }))
  })
