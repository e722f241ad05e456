/**
 * drm_exec queries and RFC-style sub-lists (internal module; re-exported by `Exec.ts`).
 *
 * @since 0.1.0
 */
import { Effect, Exit } from "effect"
import type { Held } from "../Held.ts"
import type { AcquireCtx } from "../WwMutex.ts"
import {
  type ExecState,
  type LockItem,
  mergeSubList as mergeSubListCore,
  openSubList,
  type SubList,
  unlockSubList as unlockSubListCore
} from "./execCore.ts"
import { type DmaResv, heldKey } from "./resvCore.ts"

/**
 * An exec transaction (`struct drm_exec`) over lock items of type `T`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Exec<T extends LockItem = LockItem> {
  /** @internal */
  readonly state: ExecState<T>
}

/** The defect of an exec used by a task that does not own it (ownership is per task). */
export const foreignUse = (s: ExecState<LockItem>, task: number): Effect.Effect<never> =>
  Effect.die(new Error(`drm_exec: used by task ${task}, owned by task ${s.task}`))

/**
 * Runs `f` on the exec's state in the exec's own task; from any other task it is a defect (the
 * exec's ticket and locks belong to the task that created it, as `ww_acquire_ctx` does).
 */
export const asOwner = <T extends LockItem, A, E, R>(
  exec: Exec<T>,
  f: (s: ExecState<T>) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => (fiber.id === exec.state.task ? f(exec.state) : foreignUse(exec.state, fiber.id)))

/**
 * Whether a lock of the current pass recorded contention. Models `drm_exec_is_contended()`.
 *
 * @since 0.1.0
 * @category queries
 */
export const isContended = <T extends LockItem>(exec: Exec<T>): boolean => exec.state.mustRetry

/**
 * The ww ticket (for calls that take an acquire ctx, e.g. TTM eviction); `undefined` before the
 * loop. Models `drm_exec_ticket()`.
 *
 * @since 0.1.0
 * @category queries
 */
export const ticket = <T extends LockItem>(exec: Exec<T>): AcquireCtx | undefined => exec.state.ticket

/**
 * Number of passes that backed off so far (a drmkit statistic; the kernel keeps no count — each
 * is one `drm_exec_cleanup()` that found a contended object).
 *
 * @since 0.1.0
 * @category queries
 */
export const retries = <T extends LockItem>(exec: Exec<T>): number => exec.state.retries

/**
 * The tracked objects in lock order. Models `drm_exec_for_each_locked_object()`.
 *
 * @since 0.1.0
 * @category queries
 */
export const lockedObjects = <T extends LockItem>(exec: Exec<T>): ReadonlyArray<T> => exec.state.objects

/**
 * The tracked objects, most recent first. Models `drm_exec_for_each_locked_object_reverse()`.
 *
 * @since 0.1.0
 * @category queries
 */
export function* lockedObjectsReverse<T extends LockItem>(exec: Exec<T>): Generator<T> {
  const objs = exec.state.objects
  for (let i = objs.length - 1; i >= 0; i--) yield objs[i] as T
}

/**
 * The `i`-th tracked object, `undefined` out of range. Models `drm_exec_obj()`.
 *
 * @since 0.1.0
 * @category queries
 */
export const obj = <T extends LockItem>(exec: Exec<T>, i: number): T | undefined => exec.state.objects[i]

/**
 * The witness for an object this exec holds, `undefined` if it does not (or no longer) hold it.
 *
 * @since 0.1.0
 * @category queries
 */
export const heldOf = <T extends LockItem>(exec: Exec<T>, item: T): Held<DmaResv> | undefined => {
  const s = exec.state
  const m = item.resv.mutex
  // held through this exec's ticket (O(1); an item sharing a tracked item's resv counts too)
  return s.ticket !== undefined && m.ctx === s.ticket && m.owner === s.task && s.phase !== "fini"
    ? item.resv[heldKey]
    : undefined
}

/**
 * {@link heldOf} for an object known to be locked by this exec.
 *
 * @throws Error when the exec does not hold `item` (a defect inside Effect code).
 * @since 0.1.0
 * @category queries
 */
export const held = <T extends LockItem>(exec: Exec<T>, item: T): Held<DmaResv> => {
  const h = heldOf(exec, item)
  if (h === undefined) throw new Error(`drm_exec: ${item.resv.name} is not locked by this exec`)
  return h
}

/**
 * A sub-list of the transaction (the 2021 transaction-lock-list RFC): objects locked while it is
 * open can be unlocked as a batch ({@link unlockSubList}) or kept in the parent
 * ({@link mergeSubList}). A backoff closes every open sub-list (its objects were unlocked).
 *
 * @since 0.1.0
 * @category sub-lists
 */
export interface Sub {
  /** @internal */
  readonly list: SubList
}

/**
 * Opens a sub-list at the current end of the transaction.
 *
 * @since 0.1.0
 * @category sub-lists
 */
export const beginSubList = <T extends LockItem>(exec: Exec<T>): Sub => ({ list: openSubList(exec.state) })

/**
 * Unlocks (newest first) the objects locked since `sub` opened and closes it; returns how many.
 * Only the exec's task may do so (a defect otherwise).
 *
 * @since 0.1.0
 * @category sub-lists
 */
export const unlockSubList = <T extends LockItem>(exec: Exec<T>, sub: Sub): Effect.Effect<number> =>
  asOwner(exec, (s) => Effect.sync(() => unlockSubListCore(s, sub.list)))

/**
 * Closes `sub`, keeping its objects locked as part of the enclosing list. Only the exec's task may
 * do so (a defect otherwise).
 *
 * @since 0.1.0
 * @category sub-lists
 */
export const mergeSubList = <T extends LockItem>(exec: Exec<T>, sub: Sub): Effect.Effect<void> =>
  asOwner(exec, (s) => Effect.sync(() => mergeSubListCore(s, sub.list)))

/**
 * Runs `body` with a fresh sub-list (e.g. the objects locked for one eviction/validation). When
 * `body` ends — success or failure — the sub-list is batch-unlocked, unless `merge` is set and
 * `body` succeeded, in which case its objects stay locked in the parent.
 *
 * @since 0.1.0
 * @category sub-lists
 */
export const withSubList = <T extends LockItem, A, E, R>(
  exec: Exec<T>,
  body: (sub: Sub) => Effect.Effect<A, E, R>,
  options: { readonly merge?: boolean } = {}
): Effect.Effect<A, E, R> =>
  asOwner(exec, (s) => {
    const sub = beginSubList(exec)
    return Effect.onExit(body(sub), (exit) =>
      Effect.sync(() => {
        if (options.merge === true && Exit.isSuccess(exit)) mergeSubListCore(s, sub.list)
        else unlockSubListCore(s, sub.list)
      })
    )
  })
