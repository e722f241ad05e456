/**
 * Typed errors, one per kernel errno that matters to DRM memory management.
 *
 * Every fallible drmkit operation fails in Effect's error channel with one of these, never with a
 * thrown string. Each error is named after the errno it models and carries the context a driver
 * engineer needs (which lock, which object, which range), so `Effect.catchTag("Deadlock", ...)`
 * reads like the kernel's `if (ret == -EDEADLK)`.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Linux errno values of the errors below (x86-64 numbering).
 *
 * @since 0.1.0
 * @category errno
 */
export const Errno = {
  EDEADLK: 35,
  EALREADY: 114,
  EINTR: 4,
  ERESTARTSYS: 512,
  EAGAIN: 11,
  ENOSPC: 28,
  EBUSY: 16,
  ENOMEM: 12,
  EINVAL: 22,
  ETIME: 62
} as const

/**
 * `-EDEADLK`: a wound/wait acquire context must back off — release every lock it holds, slow-lock
 * `lock`, and retry with the same ticket. Only ever returned while the context holds locks.
 *
 * @since 0.1.0
 * @category errors
 */
export class Deadlock extends Data.TaggedError("Deadlock")<{
  /** Name of the contended lock (the one to slow-lock after backing off). */
  readonly lock: string
}> {
  /** @since 0.1.0 */
  readonly errno = Errno.EDEADLK
  override get message() {
    return `EDEADLK: back off and slow-lock ${this.lock}`
  }
}

/**
 * `-EALREADY`: the acquire context already holds this lock (per mutex, not per object — two
 * objects sharing one reservation collide).
 *
 * @since 0.1.0
 * @category errors
 */
export class Already extends Data.TaggedError("Already")<{ readonly lock: string }> {
  /** @since 0.1.0 */
  readonly errno = Errno.EALREADY
  override get message() {
    return `EALREADY: ${this.lock} is already held by this acquire context`
  }
}

/**
 * `-EINTR`: an interruptible lock or sleep was interrupted (a signal, in kernel terms; fiber
 * interruption in ours). Release everything and propagate.
 *
 * @since 0.1.0
 * @category errors
 */
export class Interrupted extends Data.TaggedError("Interrupted")<{ readonly what: string }> {
  /** @since 0.1.0 */
  readonly errno = Errno.EINTR
  override get message() {
    return `EINTR: interrupted while waiting for ${this.what}`
  }
}

/**
 * `-ERESTARTSYS`: an interruptible fence wait was interrupted. Kept distinct from
 * {@link Interrupted}, as the kernel keeps the two codes distinct.
 *
 * @since 0.1.0
 * @category errors
 */
export class RestartSys extends Data.TaggedError("RestartSys")<{ readonly what: string }> {
  /** @since 0.1.0 */
  readonly errno = Errno.ERESTARTSYS
  override get message() {
    return `ERESTARTSYS: interrupted while waiting for ${this.what}`
  }
}

/**
 * `-EAGAIN`: try again — e.g. a userptr invalidation raced the submission, or a trylock-only path
 * found the object busy.
 *
 * @since 0.1.0
 * @category errors
 */
export class Again extends Data.TaggedError("Again")<{ readonly what: string; readonly reason: string }> {
  /** @since 0.1.0 */
  readonly errno = Errno.EAGAIN
  override get message() {
    return `EAGAIN: ${this.what}: ${this.reason}`
  }
}

/**
 * `-ENOSPC`: a resource manager has no room for the request (TTM turns a final one into
 * {@link NoMemory}).
 *
 * @since 0.1.0
 * @category errors
 */
export class NoSpace extends Data.TaggedError("NoSpace")<{
  /** The manager or region that is full. */
  readonly what: string
  /** Requested size (bytes unless the manager says otherwise). */
  readonly requested: number
  /** Free space at the time of the request, when known. */
  readonly available?: number
}> {
  /** @since 0.1.0 */
  readonly errno = Errno.ENOSPC
  override get message() {
    const free = this.available === undefined ? "" : ` (${this.available} free)`
    return `ENOSPC: ${this.what} cannot fit ${this.requested}${free}`
  }
}

/**
 * `-EBUSY`: the object is in use (locked by someone else for a trylock, pinned, has unsignalled
 * fences with `noWaitGpu`).
 *
 * @since 0.1.0
 * @category errors
 */
export class Busy extends Data.TaggedError("Busy")<{ readonly what: string; readonly reason?: string }> {
  /** @since 0.1.0 */
  readonly errno = Errno.EBUSY
  override get message() {
    return `EBUSY: ${this.what}${this.reason === undefined ? "" : `: ${this.reason}`}`
  }
}

/**
 * `-ENOMEM`: an allocation failed, or (TTM) no placement could be satisfied even with eviction.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoMemory extends Data.TaggedError("NoMemory")<{ readonly what: string; readonly requested?: number }> {
  /** @since 0.1.0 */
  readonly errno = Errno.ENOMEM
  override get message() {
    return `ENOMEM: ${this.what}${this.requested === undefined ? "" : ` (${this.requested} requested)`}`
  }
}

/**
 * `-EINVAL`: bad input at a public boundary (negative, fractional, misaligned, overlapping,
 * oversized, unknown placement, ...). The operation changed nothing.
 *
 * @since 0.1.0
 * @category errors
 */
export class Invalid extends Data.TaggedError("Invalid")<{
  /** What was being validated (a parameter name or object). */
  readonly what: string
  /** Why it was rejected. */
  readonly reason: string
  /** The offending value, when useful. */
  readonly value?: unknown
}> {
  /** @since 0.1.0 */
  readonly errno = Errno.EINVAL
  override get message() {
    const v = this.value === undefined ? "" : ` (got ${String(this.value)})`
    return `EINVAL: ${this.what}: ${this.reason}${v}`
  }
}

/**
 * `-ETIME`: a wait ran out of time.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Data.TaggedError("Timeout")<{ readonly what: string; readonly timeoutMs: number }> {
  /** @since 0.1.0 */
  readonly errno = Errno.ETIME
  override get message() {
    return `ETIME: ${this.what} did not complete within ${this.timeoutMs} ms`
  }
}

/**
 * Any drmkit error.
 *
 * @since 0.1.0
 * @category errors
 */
export type DrmError =
  | Deadlock
  | Already
  | Interrupted
  | RestartSys
  | Again
  | NoSpace
  | Busy
  | NoMemory
  | Invalid
  | Timeout
