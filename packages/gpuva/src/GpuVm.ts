/**
 * A GPU VM's object tracking: the common reservation object, the external-object list, the evict
 * list, validation and fence publication — the half of `struct drm_gpuvm` that is not the VA
 * tree (that is {@link VaSpace}).
 *
 * Models `drm_gpuvm_init()`'s `r_obj` (the VM's common resv, shared by every private object),
 * `gpuvm->extobj` and `gpuvm->evict`, `drm_gpuvm_validate()`, `drm_gpuvm_resv_add_fence()` and
 * the locking helpers `drm_gpuvm_prepare_vm()`, `_prepare_objects()`, `_prepare_range()` and
 * `drm_gpuvm_exec_lock()` (see {@link lockAll}). The lists are not resv-protected: like the
 * kernel's default mode they are only ever changed atomically (JS has no preemption), so list
 * changes need no VM lock; the object's resv is still required where the kernel asserts it.
 *
 * @since 0.1.0
 */
import type { Already, Deadlock, Interrupted, Invalid } from "@drmkit/core"
import { type DmaFence, DmaResv, Exec, type Held } from "@drmkit/resv-locking"
import { Effect, type Scope, Semaphore } from "effect"
import * as Allocator from "./Allocator.ts"
import type { GemObject } from "./GpuVa.ts"
import * as RangeFences from "./internal/rangeFences.ts"
import type * as PageTables from "./PageTables.ts"
import type * as VaSpace from "./VaSpace.ts"
import * as VmBo from "./VmBo.ts"

/**
 * Driver callbacks (`struct drm_gpuvm_ops`, the parts used here).
 *
 * @since 0.1.0
 * @category models
 */
export interface VmOps<E = never> {
  /**
   * `vm_bo_validate`: make an evicted object usable again (move it back via ttm-placement once
   * that exists). Called with the object's resv held; failing stops {@link validate}.
   */
  readonly vmBoValidate?: (b: VmBo.VmBo, objResv: Held.Held<DmaResv.DmaResv>) => Effect.Effect<void, E>
}

/**
 * Options of {@link make} (the arguments of `drm_gpuvm_init()` this half needs).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = never> {
  readonly space: VaSpace.VaSpace
  /** The VM's common reservation object (default: a new one named after the space). */
  readonly resv?: DmaResv.DmaResv
  /** Page tables; required for VM_BIND. */
  readonly pageTables?: PageTables.VmPageTables
  readonly allocator?: Allocator.Allocator
  readonly ops?: VmOps<E>
}

/**
 * The VM: the object-tracking half of `struct drm_gpuvm` plus xe's `struct xe_vm` bits VM_BIND needs
 * (`vm->lock`, page tables, range fences, the banned state).
 *
 * @since 0.1.0
 * @category models
 */
export class GpuVm<E = never> implements VmBo.VmLike {
  readonly name: string
  readonly space: VaSpace.VaSpace
  readonly resv: DmaResv.DmaResv
  readonly extobjs = new Set<VmBo.VmBo>()
  readonly evicted = new Set<VmBo.VmBo>()
  readonly allocator: Allocator.Allocator
  readonly pageTables: PageTables.VmPageTables | undefined
  readonly ops: VmOps<E>
  /** The outer VM lock (xe `vm->lock`): serialises bind submissions on this VM. */
  readonly bindLock: Semaphore.Semaphore = Semaphore.makeUnsafe(1)
  /**
   * Set when a page-table job failed: the page tables no longer match the shadow and the tree, so
   * the VM refuses further binds (xe bans the VM; userspace gets `-ECANCELED` and recreates it).
   */
  killed: Error | undefined = undefined
  /** Outstanding page-table jobs by address range (xe's range fences). */
  readonly rangeFences = new RangeFences.RangeFences()
  /** @internal use {@link make} */
  constructor(options: Options<E>) {
    this.space = options.space
    this.name = options.space.name
    this.resv = options.resv ?? DmaResv.make(`${options.space.name}.resv`)
    this.pageTables = options.pageTables
    this.allocator = options.allocator ?? Allocator.unlimited
    this.ops = options.ops ?? {}
  }
}

/**
 * `drm_gpuvm_init()` for the object-tracking half.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never>(options: Options<E>): GpuVm<E> => new GpuVm(options)

/**
 * The reservation objects a VM-wide transaction must lock: the VM's common resv first, then every
 * external object's (`drm_gpuvm_prepare_vm()` + `drm_gpuvm_prepare_objects()`), without
 * duplicates.
 *
 * @since 0.1.0
 * @category locking
 */
export const resvsToLock = (vm: GpuVm<unknown>): Array<DmaResv.DmaResv> => {
  const out = new Set<DmaResv.DmaResv>([vm.resv])
  for (const b of vm.extobjs) if (b.obj.resv instanceof DmaResv.DmaResv) out.add(b.obj.resv)
  return [...out]
}

/**
 * The reservation objects of every object mapped in `[addr, addr + range)`
 * (`drm_gpuvm_prepare_range()`).
 *
 * @since 0.1.0
 * @category locking
 */
export const resvsOfRange = (vm: GpuVm<unknown>, addr: bigint, range: bigint): Array<DmaResv.DmaResv> => {
  const out = new Set<DmaResv.DmaResv>()
  for (const va of vm.space.iterate(addr, range)) {
    const r = va.obj?.resv
    if (r instanceof DmaResv.DmaResv) out.add(r)
  }
  return [...out]
}

/**
 * `drm_gpuvm_validate()`: calls the driver's `vmBoValidate` for every evicted vm_bo (its object's
 * resv must be locked by the caller — asserted) and takes it off the evict list on success; the
 * first failure stops and is returned, leaving the rest on the list.
 *
 * @since 0.1.0
 * @category eviction
 */
export const validate = <E>(vm: GpuVm<E>, locks: Locks): Effect.Effect<void, E> =>
  Effect.gen(function* () {
    for (const b of [...vm.evicted]) {
      const held = heldOfObject(vm, locks, b.obj)
      if (vm.ops.vmBoValidate !== undefined) yield* vm.ops.vmBoValidate(b, held)
      VmBo.evict(b, false, held)
    }
  })

/**
 * A locking transaction over reservation objects (`struct drm_exec` as used by `drm_gpuvm_exec`).
 *
 * @since 0.1.0
 * @category locking
 */
export type Locks = Exec.Exec<DmaResv.DmaResv>

/**
 * The witness of `resv` from a transaction; a defect (`LockNotHeld`) when the transaction did not
 * lock it or the running task does not hold it (`dma_resv_assert_held()`).
 *
 * @since 0.1.0
 * @category locking
 */
export const heldOf = (locks: Locks, resv: DmaResv.DmaResv): Held.Held<DmaResv.DmaResv> => {
  const h = Exec.heldOf(locks, resv)
  if (h === undefined || !DmaResv.isHeld(resv)) throw new VmBo.LockNotHeld(`${resv.name} is not locked by this task`)
  return h
}

/**
 * The reservation object protecting `obj` in `vm`: its own, or the VM's common resv for a private
 * object that has none (`obj->resv == drm_gpuvm_resv(gpuvm)`). A non-`DmaResv` resv is API misuse
 * (a `LockNotHeld` defect).
 *
 * @since 0.1.0
 * @category locking
 */
export const resvOf = (vm: GpuVm<unknown>, obj: GemObject): DmaResv.DmaResv => {
  const resv = obj.resv ?? vm.resv
  if (!(resv instanceof DmaResv.DmaResv)) throw new VmBo.LockNotHeld(`${obj.name}'s resv is not a DmaResv`)
  return resv
}

/**
 * The witness of `obj`'s reservation lock ({@link resvOf}) from a transaction — what the object's
 * gpuva list and evict state need (`dma_resv_assert_held(obj->resv)`); a defect when not held.
 *
 * @since 0.1.0
 * @category locking
 */
export const heldOfObject = (vm: GpuVm<unknown>, locks: Locks, obj: GemObject): Held.Held<DmaResv.DmaResv> =>
  heldOf(locks, resvOf(vm, obj))

/**
 * Errors of a lock step inside an exec loop (`Deadlock` is handled by the loop).
 *
 * @since 0.1.0
 * @category locking
 */
export type LockError = Deadlock | Already | Interrupted | Invalid

/**
 * `drm_gpuvm_prepare_vm()`: locks the VM's common resv and reserves `numFences` slots.
 *
 * @since 0.1.0
 * @category locking
 */
export const prepareVm = (exec: Locks, vm: GpuVm<unknown>, numFences: number): Effect.Effect<void, LockError> =>
  Effect.asVoid(Exec.prepare(exec, vm.resv, numFences))

/**
 * `drm_gpuvm_prepare_objects()`: locks every external object's resv and reserves slots.
 *
 * @since 0.1.0
 * @category locking
 */
export const prepareObjects = (exec: Locks, vm: GpuVm<unknown>, numFences: number): Effect.Effect<void, LockError> =>
  Exec.prepareArray(exec, resvsToLock(vm).slice(1), numFences)

/**
 * `drm_gpuvm_prepare_range()`: locks the objects mapped in `[addr, addr + range)`.
 *
 * @since 0.1.0
 * @category locking
 */
export const prepareRange = (
  exec: Locks,
  vm: GpuVm<unknown>,
  addr: bigint,
  range: bigint,
  numFences: number
): Effect.Effect<void, LockError> => Exec.prepareArray(exec, resvsOfRange(vm, addr, range), numFences)

/**
 * `drm_gpuvm_exec_lock()`: ONE exec transaction (ignore-duplicates) locking the VM's resv, every
 * external object and whatever `extra` adds (e.g. {@link prepareRange} or the objects of a bind),
 * retried on contention until all are locked; everything is unlocked when the scope closes.
 *
 * @since 0.1.0
 * @category locking
 */
export const execLock = <E = never>(
  vm: GpuVm<unknown>,
  numFences: number,
  extra?: (exec: Locks) => Effect.Effect<void, E>,
  options: { readonly interruptible?: boolean } = {}
): Effect.Effect<Locks, Exclude<E, Deadlock> | Already | Interrupted | Invalid, Scope.Scope> =>
  Effect.gen(function* () {
    const exec = yield* Exec.make<DmaResv.DmaResv>({
      ignoreDuplicates: true,
      interruptible: options.interruptible === true
    })
    yield* Exec.untilAllLocked(
      exec,
      Effect.gen(function* () {
        yield* prepareVm(exec, vm, numFences)
        yield* prepareObjects(exec, vm, numFences)
        if (extra !== undefined) yield* extra(exec)
      })
    )
    return exec
  })

/**
 * `drm_gpuvm_resv_add_fence()`: adds `fence` to every locked reservation object of the
 * transaction — with `privateUsage` on the VM's common resv (shared by all private objects) and
 * `extobjUsage` on each external object's. Slots must have been reserved (a defect otherwise).
 *
 * @since 0.1.0
 * @category fences
 */
export const resvAddFence = (
  vm: GpuVm<unknown>,
  locks: Locks,
  fence: DmaFence.DmaFence,
  privateUsage: DmaResv.Usage,
  extobjUsage: DmaResv.Usage
): Effect.Effect<void, Invalid> =>
  Effect.forEach(
    [...new Set(Exec.lockedObjects(locks))],
    (resv) => DmaResv.addFence(heldOf(locks, resv), fence, resv === vm.resv ? privateUsage : extobjUsage),
    { discard: true }
  )

/**
 * Teardown check (`drm_gpuvm_fini()` warns when these are non-empty): the names of what is still
 * there — mappings, extobjs, evicted vm_bos. Empty when the VM was cleaned up.
 *
 * @since 0.1.0
 * @category teardown
 */
export const leftovers = (vm: GpuVm<unknown>): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (vm.space.count > 0) out.push(`${vm.space.count} mappings`)
  if (vm.extobjs.size > 0) out.push(`${vm.extobjs.size} extobjs`)
  if (vm.evicted.size > 0) out.push(`${vm.evicted.size} evicted vm_bos`)
  if (vm.rangeFences.size > 0) out.push(`${vm.rangeFences.size} range fences`)
  return out
}
