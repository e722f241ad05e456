/**
 * vm_bo: the unique (VM, GEM object) pair, and the object's gpuva list.
 *
 * Models `struct drm_gpuvm_bo` and its helpers in `drivers/gpu/drm/drm_gpuvm.c`:
 * `drm_gpuvm_bo_create()`, `drm_gpuvm_bo_obtain()`, `drm_gpuvm_bo_obtain_prealloc()`,
 * `drm_gpuvm_bo_find()`, `drm_gpuvm_bo_get()` / `drm_gpuvm_bo_put()`, `drm_gpuva_link()` /
 * `drm_gpuva_unlink()`, `drm_gpuvm_bo_extobj_add()` and `drm_gpuvm_bo_evict()`.
 *
 * A vm_bo exists at most once per (VM, object); it is on the object's gpuva list, holds the VAs of
 * that object in that VM (each linked VA holds one reference), and is on the VM's extobj list when
 * the object is external and on its evict list while evicted. The object's gpuva list is protected
 * by the object's reservation lock, or by a driver lock set with {@link setGpuvaLock}
 * (`drm_gem_gpuva_set_lock()`): every function that touches it takes a {@link GpuvaLock} witness
 * (compile-time proof) and asserts at run time that it is the right lock and that the running task
 * holds it (`drm_gem_gpuva_assert_lock_held()`); a violation is a defect (thrown `LockNotHeld`).
 *
 * @since 0.1.0
 */
import type { NoMemory } from "@drmkit/core"
import { Held } from "@drmkit/resv-locking"
import type { Allocator } from "./Allocator.ts"
import type { GemObject, GpuVa } from "./GpuVa.ts"

/**
 * The VM side a vm_bo needs (the `struct drm_gpuvm` fields `drm_gpuvm_bo` code touches): identity, the common resv (to tell external objects apart), the
 * extobj and evict lists and the allocation hook. {@link GpuVm.GpuVm} implements it.
 *
 * @since 0.1.0
 * @category models
 */
export interface VmLike {
  readonly name: string
  /** The VM's common reservation object (`drm_gpuvm_resv(gpuvm)`). */
  readonly resv: unknown
  /** `gpuvm->extobj.list`, insertion ordered. */
  readonly extobjs: Set<VmBo>
  /** `gpuvm->evict.list`, insertion ordered. */
  readonly evicted: Set<VmBo>
  readonly allocator: Allocator
}

/**
 * Proof that the lock protecting an object's gpuva list (`obj->gpuva.list`) is held: a witness of the object's
 * reservation lock, or of the driver lock registered with {@link setGpuvaLock}.
 *
 * @since 0.1.0
 * @category models
 */
export type GpuvaLock = Held.Held<unknown>

/**
 * API misuse the kernel catches with lockdep / `WARN_ON`: a defect, never a typed error.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockNotHeld extends Error {
  override readonly name = "LockNotHeld"
}

/**
 * vm_bo misuse the kernel `WARN_ON`s or that would be a use-after-free there (a reference taken
 * or dropped after the last put, a pre-allocated vm_bo reused, a VA linked twice or into another
 * object's vm_bo): a defect, never a typed error.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmBoMisuse extends Error {
  override readonly name = "VmBoMisuse"
}

/**
 * The vm_bo (`struct drm_gpuvm_bo`). Fields are read-only for users; mutate through this module's functions.
 *
 * @since 0.1.0
 * @category models
 */
export class VmBo {
  readonly vm: VmLike
  readonly obj: GemObject
  /** `kref`. */
  refs = 1
  /** `vm_bo->evicted`. */
  evicted = false
  /** `list.gpuva`: the VAs linked to this vm_bo, in link order. */
  readonly vas = new Set<GpuVa>()
  /** Whether it is on the object's gpuva list (`list.entry.gem`). */
  inObjList = false
  /** Set once its last reference is gone. */
  destroyed = false
  /** @internal use {@link create} */
  constructor(vm: VmLike, obj: GemObject) {
    this.vm = vm
    this.obj = obj
  }
  /** Whether the object is external to the VM (its resv is not the VM's common resv). */
  get isExtobj(): boolean {
    return isExtobj(this.vm, this.obj)
  }
}

/** The object's gpuva list (`obj->gpuva.list`): its vm_bos, one per VM. */
const objLists = new WeakMap<GemObject, Array<VmBo>>()
/** Driver locks registered per object (`drm_gem_gpuva_set_lock()`). */
const driverLocks = new WeakMap<GemObject, unknown>()
/** `va->vm_bo`. */
const vaOwner = new WeakMap<GpuVa, VmBo>()

/**
 * `drm_gpuvm_is_extobj()`: the object has its own reservation object, distinct from the VM's.
 * An object without a resv shares the VM's (a private object).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isExtobj = (vm: VmLike, obj: GemObject): boolean => obj.resv !== undefined && obj.resv !== vm.resv

/**
 * `drm_gem_gpuva_set_lock()`: protect `obj`'s gpuva list with a driver lock instead of its resv.
 * `target` is what the driver lock's witness points at (`Held.target`).
 *
 * @since 0.1.0
 * @category locking
 */
export const setGpuvaLock = (obj: GemObject, target: unknown): void => {
  driverLocks.set(obj, target)
}

/**
 * `drm_gem_gpuva_assert_lock_held()`: throws {@link LockNotHeld} (a defect) unless `lock` witnesses
 * the lock protecting `obj`'s gpuva list and the running task holds it.
 *
 * @since 0.1.0
 * @category locking
 */
export const assertGpuvaLock = (obj: GemObject, lock: GpuvaLock): void => {
  const want = driverLocks.get(obj) ?? obj.resv
  if (want === undefined) throw new LockNotHeld(`${obj.name} has neither a resv nor a gpuva lock`)
  if (lock.target !== want) throw new LockNotHeld(`wrong lock for ${obj.name}'s gpuva list`)
  if (!Held.isHeld(lock)) throw new LockNotHeld(`${obj.name}'s gpuva lock is not held by this task`)
}

/**
 * `drm_gpuvm_bo_create()`: a fresh vm_bo (one reference), not yet on the object's list. Used for
 * pre-allocation before {@link obtainPrealloc}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const create = (vm: VmLike, obj: GemObject): VmBo | NoMemory =>
  vm.allocator.alloc("vmBo", 1) ?? new VmBo(vm, obj)

/**
 * `drm_gpuvm_bo_find()`: the vm_bo of (vm, obj) with a new reference, or `undefined`.
 *
 * @since 0.1.0
 * @category lookup
 */
export const find = (vm: VmLike, obj: GemObject, lock: GpuvaLock): VmBo | undefined => {
  assertGpuvaLock(obj, lock)
  const found = peek(vm, obj)
  if (found !== undefined) found.refs += 1
  return found
}

/**
 * `drm_gpuvm_bo_find()` without taking a reference or asserting the lock (diagnostics and tests).
 *
 * @since 0.1.0
 * @category lookup
 */
export const peek = (vm: VmLike, obj: GemObject): VmBo | undefined => objLists.get(obj)?.find((b) => b.vm === vm)

/**
 * The object's gpuva list: every vm_bo of `obj`, one per VM (`drm_gem_for_each_gpuvm_bo()`).
 *
 * @since 0.1.0
 * @category lookup
 */
export const ofObject = (obj: GemObject): ReadonlyArray<VmBo> => objLists.get(obj) ?? []

const addToObj = (b: VmBo): void => {
  const list = objLists.get(b.obj)
  if (list === undefined) objLists.set(b.obj, [b])
  else list.push(b)
  b.inObjList = true
}

/**
 * `drm_gpuvm_bo_obtain()`: the existing vm_bo of (vm, obj) with a new reference, or a new one put
 * on the object's gpuva list; `NoMemory` if the allocation fails.
 *
 * @since 0.1.0
 * @category constructors
 */
export const obtain = (vm: VmLike, obj: GemObject, lock: GpuvaLock): VmBo | NoMemory => {
  const found = find(vm, obj, lock)
  if (found !== undefined) return found
  const b = create(vm, obj)
  if (b instanceof VmBo) addToObj(b)
  return b
}

/**
 * `drm_gpuvm_bo_obtain_prealloc()`: if (vm, obj) already has a vm_bo, drop `pre` and return the
 * existing one with a new reference; otherwise put `pre` on the object's list and return it.
 * Allocates nothing: usable in the fence-signalling path.
 *
 * @since 0.1.0
 * @category constructors
 */
export const obtainPrealloc = (pre: VmBo, lock: GpuvaLock): VmBo => {
  if (pre.inObjList || pre.destroyed) throw new VmBoMisuse("obtainPrealloc: the pre-allocated vm_bo is already in use")
  const found = find(pre.vm, pre.obj, lock)
  if (found !== undefined) {
    pre.refs = 0
    pre.destroyed = true
    return found
  }
  addToObj(pre)
  return pre
}

/**
 * `drm_gpuvm_bo_get()`.
 *
 * @since 0.1.0
 * @category refcount
 */
export const get = (b: VmBo): VmBo => {
  if (b.destroyed) throw new VmBoMisuse("vm_bo used after its last put")
  b.refs += 1
  return b
}

/**
 * `drm_gpuvm_bo_put()`: drops a reference; the last one takes the vm_bo off the extobj and evict
 * lists and the object's gpuva list. The lock is required (and asserted) only when the count may
 * reach zero, as in the kernel. Returns whether the vm_bo was destroyed.
 *
 * @since 0.1.0
 * @category refcount
 */
export const put = (b: VmBo, lock?: GpuvaLock): boolean => {
  if (b.destroyed || b.refs <= 0) throw new VmBoMisuse("vm_bo put after its last reference")
  if (b.refs > 1) {
    b.refs -= 1
    return false
  }
  if (b.inObjList) {
    if (lock === undefined) throw new LockNotHeld(`last put of ${b.obj.name}'s vm_bo without its gpuva lock`)
    assertGpuvaLock(b.obj, lock)
    const list = objLists.get(b.obj) ?? []
    list.splice(list.indexOf(b), 1)
    if (list.length === 0) objLists.delete(b.obj)
    b.inObjList = false
  }
  b.vm.extobjs.delete(b)
  b.vm.evicted.delete(b)
  b.refs = 0
  b.destroyed = true
  return true
}

/**
 * `drm_gpuva_link()`: adds `va` to `b`'s gpuva list (taking a vm_bo reference). NULL (sparse) VAs
 * have no object and are not linked (a no-op, as in the kernel).
 *
 * @since 0.1.0
 * @category linking
 */
export const link = (va: GpuVa, b: VmBo, lock: GpuvaLock): void => {
  if (va.obj === null) return
  if (va.obj !== b.obj) throw new VmBoMisuse(`link: VA of ${va.obj.name} into the vm_bo of ${b.obj.name}`)
  assertGpuvaLock(b.obj, lock)
  if (vaOwner.has(va)) throw new VmBoMisuse("link: VA already linked")
  vaOwner.set(va, get(b))
  b.vas.add(va)
}

/**
 * `drm_gpuva_unlink()`: removes `va` from its vm_bo's gpuva list and drops the reference the link
 * held (which may destroy the vm_bo). No-op for an unlinked or NULL VA.
 *
 * @since 0.1.0
 * @category linking
 */
export const unlink = (va: GpuVa, lock: GpuvaLock): void => {
  const b = vaOwner.get(va)
  if (b === undefined) return
  assertGpuvaLock(b.obj, lock)
  vaOwner.delete(va)
  b.vas.delete(va)
  put(b, lock)
}

/**
 * `va->vm_bo`: the vm_bo a VA is linked to.
 *
 * @since 0.1.0
 * @category lookup
 */
export const ofVa = (va: GpuVa): VmBo | undefined => vaOwner.get(va)

/**
 * `drm_gpuvm_bo_extobj_add()`: puts `b` on its VM's extobj list if the object is external (once).
 *
 * @since 0.1.0
 * @category lists
 */
export const extobjAdd = (b: VmBo): void => {
  if (b.isExtobj && !b.destroyed) b.vm.extobjs.add(b)
}

/**
 * `drm_gpuvm_bo_evict()`: marks `b` evicted (or not) and moves it onto (off) the VM's evict list.
 * Called by the eviction path under the object's reservation lock: `objResv` must witness
 * `b.obj.resv` (asserted).
 *
 * @since 0.1.0
 * @category lists
 */
export const evict = (b: VmBo, evicted: boolean, objResv: Held.Held<unknown>): void => {
  if (objResv.target !== (b.obj.resv ?? b.vm.resv)) throw new LockNotHeld(`evict: witness is not ${b.obj.name}'s resv`)
  if (!Held.isHeld(objResv)) throw new LockNotHeld(`evict: ${b.obj.name}'s resv is not held by this task`)
  b.evicted = evicted
  if (evicted) b.vm.evicted.add(b)
  else b.vm.evicted.delete(b)
}

/**
 * `drm_gpuvm_bo_gem_evict()`: {@link evict} for every vm_bo of `obj` (every VM it is mapped in).
 *
 * @since 0.1.0
 * @category lists
 */
export const evictObject = (obj: GemObject, evicted: boolean, objResv: Held.Held<unknown>): void => {
  for (const b of [...ofObject(obj)]) evict(b, evicted, objResv)
}
