/**
 * The drm_exec state machine (internal, synchronous): the tracked-object table with references,
 * the contended/prelocked markers, reverse-order bulk unlock, and RFC-style sub-lists. The Effect
 * shell in `Exec.ts` drives it; nothing here allocates an Effect.
 *
 * @since 0.1.0
 */
import type { AcquireCtx } from "../WwMutex.ts"
import { type DmaResv, resetMaxFences } from "./resvCore.ts"
import { unlockFast } from "./ww.ts"

/**
 * Something an exec can lock: an object with a reservation (a GEM/TTM buffer object, a VM, an
 * imported dma-buf — or a bare `DmaResv`, which is its own item). `retain`/`release` are the
 * object's reference count (`drm_gem_object_get/put`): the exec holds a reference on every object
 * it tracks — locked, contended or prelocked — until it lets go of it.
 *
 * @since 0.1.0
 * @category models
 */
export interface LockItem {
  readonly resv: DmaResv
  readonly retain?: () => void
  readonly release?: () => void
}

/** Lifecycle of an exec: before the loop, inside it, after it, finished. */
export type Phase = "init" | "locking" | "done" | "fini"

/** An open sub-list: objects tracked at index >= `start` belong to it. */
export interface SubList {
  start: number
  open: boolean
}

/** The exec transaction state (`struct drm_exec`). */
export class ExecState<T extends LockItem> {
  readonly interruptible: boolean
  readonly ignoreDuplicates: boolean
  readonly injection: boolean | undefined
  readonly strict: boolean | undefined
  /** The task (fiber id) that runs the transaction. */
  readonly task: number
  phase: Phase = "init"
  ticket: AcquireCtx | undefined = undefined
  /** Tracked (locked) objects in lock order. */
  readonly objects: Array<T> = []
  /** The object whose lock reported `-EDEADLK`; slow-locked first on the next pass. */
  contended: T | undefined = undefined
  /** Contention was recorded in the current pass: the loop must back off and re-run. */
  mustRetry = false
  /** The contended object after its slow lock, until the body asks for it again. */
  prelocked: T | undefined = undefined
  /** Open sub-lists, innermost last. */
  readonly subLists: Array<SubList> = []
  /** Passes that backed off. */
  retries = 0

  constructor(
    task: number,
    options: {
      readonly interruptible: boolean
      readonly ignoreDuplicates: boolean
      readonly injection: boolean | undefined
      readonly strict: boolean | undefined
    }
  ) {
    this.task = task
    this.interruptible = options.interruptible
    this.ignoreDuplicates = options.ignoreDuplicates
    this.injection = options.injection
    this.strict = options.strict
  }
}

/** Takes a reference on `obj`. */
export const retain = (obj: LockItem): void => obj.retain?.()

/** Drops a reference on `obj`. */
export const drop = (obj: LockItem): void => obj.release?.()

/** Starts tracking a freshly locked `obj` (takes a reference). Models `drm_exec_obj_locked()`. */
export const track = <T extends LockItem>(exec: ExecState<T>, obj: T): void => {
  retain(obj)
  exec.objects.push(obj)
}

/**
 * Forgets the prelocked marker when its object is unlocked early (by `unlockObj` or a sub-list),
 * so a later lock of it really locks it again. (The kernel keeps the marker, which would report
 * such an object locked without locking it.)
 */
const forgetPrelocked = <T extends LockItem>(exec: ExecState<T>, obj: T): void => {
  if (exec.prelocked !== obj) return
  exec.prelocked = undefined
  drop(obj)
}

/** Unlocks one resv the exec's task holds (with the strict-mode slot reset of `dma_resv_unlock`). */
const unlockResv = (resv: DmaResv, task: number): void => {
  if (resv.mutex.owner !== task) return
  resetMaxFences(resv)
  unlockFast(resv.mutex, task)
}

/**
 * Unlocks every tracked object in reverse lock order and drops the references (tracked and
 * prelocked). The ticket is kept. Models `drm_exec_unlock_all()`.
 */
export const unlockAll = <T extends LockItem>(exec: ExecState<T>): void => {
  const objs = exec.objects
  for (let i = objs.length - 1; i >= 0; i--) {
    const obj = objs[i] as T
    unlockResv(obj.resv, exec.task)
    drop(obj)
  }
  objs.length = 0
  if (exec.prelocked !== undefined) {
    drop(exec.prelocked)
    exec.prelocked = undefined
  }
  for (const s of exec.subLists) s.open = false
  exec.subLists.length = 0
}

/**
 * Unlocks and forgets `obj` (searching from the most recent). Returns false when it is not
 * tracked. Models `drm_exec_unlock_obj()`.
 */
export const unlockObj = <T extends LockItem>(exec: ExecState<T>, obj: T): boolean => {
  const i = exec.objects.lastIndexOf(obj)
  if (i < 0) return false
  exec.objects.splice(i, 1)
  for (const s of exec.subLists) if (s.start > i) s.start--
  unlockResv(obj.resv, exec.task)
  drop(obj)
  forgetPrelocked(exec, obj)
  return true
}

/** Opens a sub-list at the current end of the table. */
export const openSubList = <T extends LockItem>(exec: ExecState<T>): SubList => {
  const s: SubList = { start: exec.objects.length, open: true }
  exec.subLists.push(s)
  return s
}

const closeSubList = <T extends LockItem>(exec: ExecState<T>, s: SubList): void => {
  s.open = false
  const i = exec.subLists.indexOf(s)
  if (i >= 0) exec.subLists.splice(i)
}

/**
 * Batch-unlocks the objects tracked since `s` opened (reverse order) and closes it, together with
 * any sub-list nested in it. Returns the number unlocked.
 */
export const unlockSubList = <T extends LockItem>(exec: ExecState<T>, s: SubList): number => {
  if (!s.open) return 0
  const objs = exec.objects
  const n = objs.length - s.start
  for (let i = objs.length - 1; i >= s.start; i--) {
    const obj = objs[i] as T
    unlockResv(obj.resv, exec.task)
    drop(obj)
    forgetPrelocked(exec, obj)
  }
  objs.length = s.start
  closeSubList(exec, s)
  return n
}

/** Closes `s`, leaving its objects locked in the enclosing list. */
export const mergeSubList = <T extends LockItem>(exec: ExecState<T>, s: SubList): void => {
  if (s.open) closeSubList(exec, s)
}

/**
 * Releases everything: tracked objects (reverse), the prelocked and a pending contended
 * reference. The ticket is finished by the caller. Models the body of `drm_exec_fini()`.
 */
export const releaseAll = <T extends LockItem>(exec: ExecState<T>): void => {
  unlockAll(exec)
  if (exec.contended !== undefined) {
    drop(exec.contended)
    exec.contended = undefined
  }
  exec.mustRetry = false
}
