/**
 * @drmkit/resv-locking — the kernel's reservation locking, typed: wound/wait mutexes with acquire
 * contexts (`ww_mutex`), a lockdep-style strict mode with deadlock injection, task identity and
 * signals, lock witnesses, and a seeded deterministic scheduler for interleaving tests.
 *
 * @since 0.1.0
 */

/**
 * Fences: contexts, seqnos, signalling, callbacks, waits, fence arrays (`dma_fence`).
 *
 * @since 0.1.0
 */
export * as DmaFence from "./DmaFence.ts"
/**
 * Reservation objects: lock wrappers, usage classes, fence slots, iterators, waits (`dma_resv`).
 *
 * @since 0.1.0
 */
export * as DmaResv from "./DmaResv.ts"
/**
 * Exec transactions: lock a set of reservation objects with backoff and retry (`drm_exec`).
 *
 * @since 0.1.0
 */
export * as Exec from "./Exec.ts"
/**
 * Lock witnesses: `Held<T>`.
 *
 * @since 0.1.0
 */
export * as Held from "./Held.ts"
/**
 * Strict mode and deadlock injection.
 *
 * @since 0.1.0
 */
export * as Lockdep from "./Lockdep.ts"
/**
 * Seeded deterministic scheduler for lock-protocol interleavings.
 *
 * @since 0.1.0
 */
export * as Scheduler from "./Scheduler.ts"
/**
 * Task identity (= fiber) and signals.
 *
 * @since 0.1.0
 */
export * as Task from "./Task.ts"
/**
 * Wound/wait mutexes, classes, acquire contexts and the lock operations.
 *
 * @since 0.1.0
 */
export * as WwMutex from "./WwMutex.ts"
