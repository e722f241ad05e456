/**
 * xe-lite: a small xe-shaped driver on the drmkit SDK — the composition that neither
 * `@drmkit/gpuva` nor `@drmkit/ttm-placement` may do themselves (they are siblings).
 *
 * - ONE GPU device: the driver opens it and hands it to the TTM device (`Device.make({ gpu })`);
 *   the VM's page tables live in an arena on the same device, so page-table jobs and TTM moves
 *   share one in-order GPU queue.
 * - GEM objects = TTM BOs: {@link XeBo} is what xe's `struct xe_bo` embedding `drm_gem_object` is
 *   to drm_gpuvm — size, resv and the backing frames of the BO's *current* resource.
 *   Per-VM BOs share the VM's resv (`XE_BO_FLAG_VM` / `xe_vm_resv`), external BOs have their own
 *   and land on the VM's extobj list.
 * - move_notify: TTM's `move` hook (xe's `xe_bo_move()` → `xe_bo_move_notify()` →
 *   `xe_bo_trigger_rebind()`) runs with the BO's resv held; for a BO bound in the VM it marks its
 *   vm_bos evicted (`drm_gpuvm_bo_evict()`), flags every VA `Invalidated` and zaps their PTEs
 *   (`xe_vm_invalidate_vma()`) in one page-table job submitted before the move's copy.
 * - exec: {@link exec} is `xe_exec_ioctl()`'s memory half in ONE drm_exec — lock the VM and
 *   every extobj (`drm_gpuvm_exec_lock()`), `BindQueue.submitLocked` with `validate` (per-vm_bo
 *   validate = TTM validate back into VRAM) and `rebind` (the invalidated VAs, one bind job), then
 *   run the job with its fence published to the VM resv and the extobjs.
 */
import { GpuDevice, GpuPageTables, type PageTable } from "@drmkit/gpu"
import { BindQueue, GpuVa, GpuVm, PageTables, VaSpace, type VmBind, VmBo } from "@drmkit/gpuva"
import { DmaFence, DmaResv, type Held } from "@drmkit/resv-locking"
import {
  Access,
  type BufferObject,
  Device,
  Lifecycle,
  Managers,
  Placement,
  Reserve,
  Validate
} from "@drmkit/ttm-placement"
import { Effect, Fiber, type Scope } from "effect"
import { XeBo } from "./XeBo.ts"

const { MemType, PAGE_SIZE, place } = Placement

/** 1 MiB in bytes. */
export const MiB = 1 << 20

/** Driver counters. */
export interface Stats {
  /** Moves of bound BOs seen by move_notify (evictions and validates back). */
  moveNotifies: number
  /** Of which evictions. */
  boundEvictions: number
  /** vm_bos put on the evict list by move_notify. */
  vmBosEvicted: number
  /** Zap jobs and the VAs they invalidated. */
  zapJobs: number
  zappedVas: number
  /** Per-vm_bo validates run by `GpuVm.validate`. */
  vmBoValidates: number
  /** Rebind (prefetch) bind jobs and the VAs they rebound. */
  rebindJobs: number
  rebindVas: number
  /** Exec jobs run. */
  execs: number
  /** Moves of bound BOs refused (Busy) because bind jobs were in flight. */
  busyRefusals: number
}

/** The driver instance: one device, one TTM device, one VM with one bind queue. */
export interface XeLite {
  readonly ttm: Device.Device
  readonly gpu: GpuDevice.GpuDeviceShape
  readonly arena: GpuPageTables.GpuPageTables
  readonly pt: PageTables.VmPageTables
  readonly vm: GpuVm.GpuVm<Validate.ValidateError>
  readonly queue: BindQueue.BindQueue<Validate.ValidateError>
  /** The GEM view of every BO the driver created, by BO. */
  readonly objects: Map<BufferObject.Bo, XeBo>
  /** Zap jobs in flight (forked when move_notify submitted them). */
  readonly zaps: Array<Fiber.Fiber<void>>
  readonly execContext: DmaFence.FenceContext
  readonly stats: Stats
}

/** Sizes of the device. */
export interface Config {
  readonly vramBytes: number
  readonly ttBytes: number
  /** Page-table arena size in 4 KiB tables. */
  readonly tables: number
  /**
   * Run move_notify on moves of bound BOs (default true). `false` models a driver that forgets
   * `xe_bo_trigger_rebind()`: the VM keeps pointing at the old pages — the checks must catch it.
   */
  readonly moveNotify?: boolean
}

/** 8 MiB of VRAM (buddy), 32 MiB of TT (range), 256 page tables. */
export const defaultConfig: Config = { vramBytes: 8 * MiB, ttBytes: 32 * MiB, tables: 256 }

const KiB = 1024n

/**
 * Probes the driver (`xe_device_probe` + `xe_vm_create` reduced): TTM device with VRAM and TT,
 * page-table arena on the TTM device's GPU, a 1 TiB VM with a 64 KiB kernel-reserved node and its
 * bind queue, and the move_notify hook. Everything is released when the scope closes.
 */
export const make = (config: Config = defaultConfig): Effect.Effect<XeLite, never, Scope.Scope> =>
  Effect.gen(function* () {
    // ONE GPU device, owned by the driver: TTM's moves and the VM's page-table jobs share its
    // in-order queue (as xe hands its device to ttm_device_init); opened first, closed last
    const gpu = yield* GpuDevice.make({ label: "xe-lite" }).pipe(Effect.orDie)
    const ttm = yield* Device.make({
      gpu,
      managers: [
        { memType: MemType.VRAM, name: "vram", backend: Managers.buddyBackend(config.vramBytes / PAGE_SIZE) },
        { memType: MemType.TT, name: "tt", backend: Managers.rangeBackend(config.ttBytes / PAGE_SIZE) }
      ]
    })
    const arena = yield* GpuPageTables.make(gpu, config.tables).pipe(Effect.orDie)
    const pt = PageTables.make({ tables: config.tables, executor: PageTables.gpuExecutor(arena) })
    const space = VaSpace.makeUnsafe({
      name: "xe-vm",
      start: 0n,
      range: 1n << 40n,
      reserveOffset: 0n,
      reserveRange: 64n * KiB,
      pageSize: 4096n
    })
    const holder: { d?: XeLite } = {}
    const vm = GpuVm.make<Validate.ValidateError>({
      space,
      pageTables: pt,
      ops: { vmBoValidate: (b, held) => vmBoValidate(holder.d as XeLite, b, held) }
    })
    const queue = yield* BindQueue.make(vm, "xe-bind")
    const d: XeLite = {
      ttm,
      gpu,
      arena,
      pt,
      vm,
      queue,
      objects: new Map(),
      zaps: [],
      execContext: DmaFence.contextAlloc("xe-exec"),
      stats: {
        moveNotifies: 0,
        boundEvictions: 0,
        vmBosEvicted: 0,
        zapJobs: 0,
        zappedVas: 0,
        vmBoValidates: 0,
        rebindJobs: 0,
        rebindVas: 0,
        execs: 0,
        busyRefusals: 0
      }
    }
    holder.d = d
    ttm.funcs = {
      ...ttm.funcs,
      move: (bo, _to, evict) => {
        if (config.moveNotify === false) return { _tag: "Copy" }
        // xe_vm_invalidate_vma() waits for the VM's bind jobs in flight before zapping; this hook
        // is synchronous and cannot wait, so when there is something to zap it refuses the move
        // instead (TTM skips a Busy victim, as under no_wait_gpu)
        if (hasValidVas(d, bo) && d.queue.submitted !== d.queue.completed) {
          d.stats.busyRefusals++
          return { _tag: "Fail", reason: "bind jobs in flight on the VM" }
        }
        moveNotify(d, bo, evict)
        return { _tag: "Copy" }
      }
    }
    yield* Effect.addFinalizer(() => awaitZaps(d))
    return d
  })

/**
 * `xe_bo_create` + an initial write: a BO in VRAM filled with `data`. `vmPrivate` BOs share the
 * VM's resv (created with it held, as xe does under `xe_vm_lock`); others get their own.
 */
export const createBo = (
  d: XeLite,
  name: string,
  data: Uint8Array,
  options: { readonly vmPrivate?: boolean } = {}
): Effect.Effect<XeBo, Validate.ValidateError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const shared = options.vmPrivate === true
      const opts = { size: data.byteLength, name, ...(shared ? { resv: d.vm.resv } : {}) }
      const held = shared ? yield* Reserve.lockedResv(d.vm.resv) : undefined
      const bo = yield* Lifecycle.create(d.ttm, opts, [place(MemType.VRAM)], held === undefined ? {} : { held })
      if (held !== undefined) yield* Access.write(held, bo, data)
      else yield* Reserve.withReserved(bo, (h) => Access.write(h, bo, data))
      const obj = new XeBo(bo, !shared)
      d.objects.set(bo, obj)
      return obj
    })
  )

/** Submits a bind array on the VM's bind queue and waits for its page-table job. */
export const bind = (d: XeLite, ops: ReadonlyArray<VmBind.BindOp>) =>
  Effect.gen(function* () {
    const job = yield* BindQueue.submit(d.queue, ops)
    yield* BindQueue.flush(d.queue)
    if (job.fence.error !== undefined) return yield* Effect.die(job.fence.error)
    return job
  })

/** Whether `bo` is bound in the VM with a VA that is not invalidated yet (move_notify must zap). */
const hasValidVas = (d: XeLite, bo: BufferObject.Bo): boolean => {
  const obj = d.objects.get(bo)
  if (obj === undefined) return false
  for (const b of VmBo.ofObject(obj))
    for (const va of b.vas) if ((va.flags & GpuVa.Flags.Invalidated) === 0) return true
  return false
}

/**
 * move_notify (`xe_bo_move_notify()` → `xe_bo_trigger_rebind()`), called by TTM's move hook with
 * the BO's resv held, before the copy is submitted. For a BO bound in the VM: its vm_bos go on the
 * evict list, its valid VAs are flagged `Invalidated` and their PTEs zapped by ONE page-table
 * job. TTM hooks are synchronous, so the job is submitted right here (forked; the submission
 * itself is synchronous) and the shared in-order GPU queue runs it before the move's copy and
 * before anything that later reuses the old pages.
 *
 * gpuva's `BindQueue.invalidate` (the SDK form of this) cannot be called here: it is an Effect
 * that asserts the *running fiber* holds the BO's resv, and a synchronous hook can only run an
 * Effect on a new fiber (`Effect.runSync` / `runFork`), which does not hold it — so the driver
 * still plans and applies the zap itself (see the README's friction list).
 */
const moveNotify = (d: XeLite, bo: BufferObject.Bo, evict: boolean): void => {
  const obj = d.objects.get(bo)
  if (obj === undefined || bo.resource === undefined) return
  const vmBos = VmBo.ofObject(obj)
  if (vmBos.length === 0) return
  const held = DmaResv.heldByMe(bo.resv)
  if (held === undefined) throw new VmBo.LockNotHeld(`move_notify: ${bo.name}'s resv is not held`)
  d.stats.moveNotifies++
  if (evict) d.stats.boundEvictions++
  for (const b of vmBos) if (!b.evicted) d.stats.vmBosEvicted++
  VmBo.evictObject(obj, true, held)
  const zaps: Array<PageTable.Op> = []
  for (const b of vmBos) {
    for (const va of b.vas) {
      if ((va.flags & GpuVa.Flags.Invalidated) !== 0) continue
      va.flags |= GpuVa.Flags.Invalidated
      zaps.push({ _tag: "Zap", va: va.addr, size: va.range })
    }
  }
  if (zaps.length > 0) zap(d, zaps)
}

/** Plans the zaps on the VM's shadow and submits them as one GPU job, synchronously. */
const zap = (d: XeLite, ops: ReadonlyArray<PageTable.Op>): void => {
  if (d.queue.submitted !== d.queue.completed) {
    // a queued bind job planned before this zap would rewrite the zapped PTEs after it
    throw new Error("move_notify with bind jobs in flight (the move hook should have refused the move)")
  }
  const plan = d.pt.plan(ops)
  if (!("descriptors" in plan)) throw plan
  const before = d.gpu.submitted()
  const job = GpuPageTables.apply(d.arena, plan).pipe(
    Effect.flatMap(GpuDevice.awaitFence),
    Effect.ensuring(Effect.sync(() => d.pt.retire(plan))),
    Effect.orDie
  )
  d.zaps.push(Effect.runFork(job))
  if (d.gpu.submitted() === before) throw new Error("zap job was not submitted synchronously")
  d.stats.zapJobs++
  d.stats.zappedVas += ops.length
}

/** Waits for every zap job submitted so far. */
export const awaitZaps = (d: XeLite): Effect.Effect<void> =>
  Effect.suspend(() => Effect.forEach(d.zaps.splice(0), Fiber.join, { discard: true }))

/**
 * The driver's `vm_bo_validate` (xe `xe_gpuvm_validate()` → `xe_bo_validate()`): TTM validate of
 * the BO back into VRAM, with the exec's ticket (taken from the held resv) so the eviction walk
 * can lock victims; BOs locked by this exec (the VM's and the extobjs) are never victims.
 */
const vmBoValidate = (
  d: XeLite,
  b: VmBo.VmBo,
  held: Held.Held<DmaResv.DmaResv>
): Effect.Effect<void, Validate.ValidateError> => {
  const obj = b.obj
  if (!(obj instanceof XeBo)) return Effect.die(new Error(`${obj.name} is not an xe-lite BO`))
  d.stats.vmBoValidates++
  return Validate.validate(held, obj.bo, [place(MemType.VRAM)], Device.opCtx({ held }))
}

/** Every VA whose backing was invalidated (flagged by move_notify). */
export const invalidatedVas = (d: XeLite): Array<GpuVa.GpuVa> =>
  [...d.vm.space].filter((va) => va.obj !== null && (va.flags & GpuVa.Flags.Invalidated) !== 0)

/**
 * `xe_exec_ioctl()`'s memory management in ONE exec transaction, as xe does: lock the VM's resv
 * and every extobj (`drm_gpuvm_exec_lock()`), then `BindQueue.submitLocked` with `validate` and
 * `rebind` — `GpuVm.validate` moves the evicted vm_bos back through TTM (the exec's own BOs are
 * locked, so never victims) and one bind job rebinds every invalidated VA (`xe_vm_rebind()`),
 * behind TTM's move fences. The job then runs after the rebind's fence (xe makes the exec job
 * depend on it), with its own fence published to the VM resv and the extobjs (BOOKKEEP) and
 * signalled when it is done. Nothing can be evicted between the validate and the job: the locks
 * are held throughout.
 */
export const exec = <A, E, E2 = never>(
  d: XeLite,
  job: (locks: GpuVm.Locks) => Effect.Effect<A, E>,
  options: {
    /** Runs inside the transaction between the rebind and the job (tests race an evictor here). */
    readonly beforeJob?: (locks: GpuVm.Locks) => Effect.Effect<void, E2>
  } = {}
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const locks = yield* GpuVm.execLock(d.vm, 1)
      const invalidated = invalidatedVas(d).length
      const rebind = yield* BindQueue.submitLocked(d.queue, [], locks, { validate: true, rebind: true })
      if (rebind !== undefined) {
        yield* Effect.orDie(DmaFence.wait(rebind.fence))
        if (rebind.fence.error !== undefined) return yield* Effect.die(rebind.fence.error)
        d.stats.rebindJobs++
        d.stats.rebindVas += invalidated
      }
      if (options.beforeJob !== undefined) yield* options.beforeJob(locks)
      const fence = DmaFence.make(d.execContext)
      yield* GpuVm.resvAddFence(d.vm, locks, fence, "bookkeep", "bookkeep")
      const value = yield* job(locks).pipe(Effect.ensuring(Effect.sync(() => fence.signal())))
      d.stats.execs++
      return value
    })
  )
