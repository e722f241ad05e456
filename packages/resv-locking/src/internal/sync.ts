/**
 * The synchronous ww_mutex API (internal module, re-exported by `WwMutex`): plain functions over
 * the core for transaction helpers, benchmarks and assertions outside a fiber.
 *
 * @since 0.1.0
 */
import type { Held } from "../Held.ts"
import { heldBy as heldByTask } from "./held.ts"
import { config } from "./lockdep.ts"
import { release as releaseMutex } from "./queue.ts"
import { type AcquireCtx, Code, type WwClass, type WwMutex } from "./state.ts"
import { type CtxOptions, ctxFini, ctxInit, injectAfterLock, lockEnter, trylockFast, unlockFast } from "./ww.ts"

/**
 * Whether the witness is genuine and names a mutex owned by `task`. For ownership checks outside
 * a fiber (e.g. a synchronous core handed the task id). Models `lockdep_is_held()` for `task`.
 *
 * @since 0.1.0
 * @category assertions
 */
export const heldBy = (held: Held<unknown>, task: number): boolean => heldByTask(held, task)

/**
 * Releases `m` regardless of its owner (for finalizers that run in another fiber than the
 * locker, e.g. a scope closed from outside). Not a kernel API.
 *
 * @since 0.1.0
 * @category locking
 */
export const forceUnlockUnsafe = (m: WwMutex): void => {
  if (m.owner !== 0) releaseMutex(m)
}

/**
 * Whether strict (lockdep-style) mode is globally on — the `CONFIG_DEBUG_MUTEXES` /
 * `CONFIG_PROVE_LOCKING` question other modules ask (e.g. `dma_resv_reset_max_fences` on unlock).
 *
 * @since 0.1.0
 * @category lockdep
 */
export const isStrict = (): boolean => config.strict

/**
 * Result codes of the synchronous API: `OK` (0), `DEADLK`, `ALREADY`, `BUSY` (would sleep / trylock
 * failed), `DESTROYED` and `WRONG_CLASS` (`Invalid`), `VIOLATION` (a lockdep report aborted it).
 *
 * @since 0.1.0
 * @category synchronous core
 */
export const SyncCode = Code

/**
 * The synchronous, allocation-free lock attempt for `task` — what {@link lock} runs first. Never
 * sleeps: `BUSY` means the caller has to fall back to the Effect API ({@link lock}), which queues a
 * waiter. Deadlock injection applies as in {@link lock}. For transaction helpers and benchmarks
 * that do their own bookkeeping; ownership is still by task id.
 *
 * @since 0.1.0
 * @category synchronous core
 */
export const lockSync = (m: WwMutex, ctx: AcquireCtx | undefined, task: number): Code => {
  const code = lockEnter(m, ctx, task, false)
  return code === Code.OK && ctx?.inject && injectAfterLock(m, ctx) ? Code.DEADLK : code
}

/**
 * The synchronous `ww_mutex_trylock()`: `OK` or `BUSY` (or an Invalid / violation code).
 *
 * @since 0.1.0
 * @category synchronous core
 */
export const trylockSync = (m: WwMutex, ctx: AcquireCtx | undefined, task: number): Code => trylockFast(m, ctx, task)

/**
 * The synchronous `ww_mutex_unlock()` by `task`: `OK` or `VIOLATION`.
 *
 * @since 0.1.0
 * @category synchronous core
 */
export const unlockSync = (m: WwMutex, task: number): Code => unlockFast(m, task)

/**
 * Synchronous `ww_acquire_init()` for `task` (undefined when strict mode aborts a nested ctx).
 *
 * @since 0.1.0
 * @category synchronous core
 */
export const acquireInitSync = (cls: WwClass, task: number, options?: CtxOptions): AcquireCtx | undefined =>
  ctxInit(cls, task, options)

/**
 * Synchronous `ww_acquire_fini()` for `task` (releases what the ctx still holds).
 *
 * @since 0.1.0
 * @category synchronous core
 */
export const acquireFiniSync = (ctx: AcquireCtx, task: number): Code => ctxFini(ctx, task, true)
