/**
 * VM_BIND bind queues: asynchronous, in-order page-table jobs with everything pre-allocated at
 * submit time.
 *
 * Models xe's `xe_vm_bind_ioctl()` on a bind exec queue and Nouveau's `nouveau_uvmm_bind_job`:
 *
 * 1. **submit** (process context, the VM's bind lock held): validate the whole array (a bad op →
 *    `Invalid`, nothing changed); lock the VM's resv, every external object and every object the
 *    ops touch in ONE ww transaction; turn each bind op into gpuva ops against the tree *as
 *    updated by the previous ops and submissions* (so the tree is always up to date for the next
 *    submit); pre-allocate every VA struct (≤ 1 map + 2 remap pieces per op), vm_bo and
 *    page-table page (worst case) the job needs; plan the page-table update of the whole array
 *    (one descriptor list) and stage it for one submission (uploads, bind groups); publish the out-fence to the VM's resv (BOOKKEEP) and every external
 *    object's; queue the job. A `NoMemory` anywhere unwinds everything — tree, vm_bos, page-table
 *    shadow, fences — to the state before the call.
 * 2. **runJob** (the fence-signalling path, inside `Allocator.signalling`): wait for the in-fences,
 *    the previous job of this queue (jobs run in submission order), overlapping jobs of other
 *    queues (range fences) and the implicit dependencies (GPU work on the VM's resv when mappings
 *    are removed; KERNEL fences — moves — of objects being mapped); apply the planned descriptors as ONE submission; signal the out-fence;
 *    release the page-table pages freed by the job. It allocates nothing and cannot fail with
 *    `NoMemory`; an executor error signals the fence with that error.
 *
 * Queues of one VM are independent except where their ranges overlap.
 *
 * Two more entry points for drivers: {@link submitLocked} runs step 1 inside the caller's exec
 * transaction (xe's lock → validate → rebind → bind → job in ONE `drm_exec`), and
 * {@link invalidate} zaps an object's mappings from the move_notify path with only the object's
 * resv held (`xe_vm_invalidate_vma()`), as a job ordered on the queue like any bind.
 *
 * @since 0.1.0
 */
import { type Already, type Interrupted, Invalid, NoMemory } from "@drmkit/core"
import type { PageTable } from "@drmkit/gpu"
import { DmaFence, DmaResv, Exec, Held } from "@drmkit/resv-locking"
import { Effect, Queue, type Scope } from "effect"
import { Flags, type GemObject, type GpuVa } from "./GpuVa.ts"
import * as GpuVm from "./GpuVm.ts"
import { bindContexts, checkArray, commit, enqueue, lockSet, runJob, usableTables } from "./internal/jobs.ts"
import type * as PageTables from "./PageTables.ts"
import * as VmBind from "./VmBind.ts"
import * as VmBo from "./VmBo.ts"

/**
 * A submitted bind job (xe's PT-update job / Nouveau's `nouveau_uvmm_bind_job`).
 *
 * @since 0.1.0
 * @category models
 */
export interface BindJob {
  /** The out-fence (`dma_fence`), signalled after the page tables were written. */
  readonly fence: DmaFence.DmaFence
  /** The page-table plan (descriptors of the whole bind array). */
  readonly plan: PageTable.Plan
  /** The plan staged for one submission (done at submit; runJob only runs it). */
  readonly update: PageTables.Prepared
  /** Fences the job waits for besides the previous job of its queue. */
  readonly deps: ReadonlyArray<DmaFence.DmaFence>
  /** Its range-fence span `[lo, hi)`, or undefined when it writes nothing. */
  readonly span: readonly [bigint, bigint] | undefined
}

/**
 * A bind queue of a VM (an xe VM_BIND exec queue with its `drm_sched` entity). Create with
 * {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface BindQueue<E = unknown> {
  readonly vm: GpuVm.GpuVm<E>
  readonly name: string
  readonly id: number
  readonly context: DmaFence.FenceContext
  /** @internal */
  readonly jobs: Queue.Queue<BindJob>
  /** @internal */
  last: DmaFence.DmaFence | undefined
  /** Jobs submitted so far (the queue's last seqno). */
  submitted: number
  /** Jobs whose fence has signalled (run, failed or cancelled). */
  completed: number
}

let nextId = 1

/**
 * Options of {@link submit} (the `syncs` of `struct drm_xe_vm_bind`).
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions {
  /** In-fences (xe `syncs` of kind wait): the job runs after all of them signalled. */
  readonly inFences?: ReadonlyArray<DmaFence.DmaFence>
}

/**
 * Creates a bind queue on `vm` (xe `DRM_XE_ENGINE_CLASS_VM_BIND` exec queue). Its worker runs jobs
 * in submission order until the scope closes; closing waits for queued jobs first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = unknown>(vm: GpuVm.GpuVm<E>, name = "bind"): Effect.Effect<BindQueue<E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const id = nextId++
    const jobs = yield* Queue.unbounded<BindJob>()
    const context = DmaFence.contextAlloc(`${vm.name}.${name}`)
    bindContexts.add(context)
    const q: BindQueue<E> = {
      vm,
      name,
      id,
      context,
      jobs,
      last: undefined,
      submitted: 0,
      completed: 0
    }
    // finalizers run newest first: flush the queued jobs, then the scope interrupts the worker
    yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(Queue.take(jobs), (job) => Effect.uninterruptible(runJob(q, job))))
    )
    yield* Effect.addFinalizer(() => flush(q))
    return q
  })

/**
 * Waits until every job submitted so far has completed: waits for the queue's last out-fence
 * (what userspace does with the last out-syncobj of an xe bind queue; the scheduler's
 * `drm_sched_entity_flush()` on close).
 *
 * @since 0.1.0
 * @category waiting
 */
export const flush = (q: BindQueue): Effect.Effect<void> =>
  Effect.suspend(() => (q.last === undefined ? Effect.void : Effect.orDie(Effect.asVoid(DmaFence.wait(q.last)))))

/**
 * Submits a bind array (see the module docs for the protocol). Fails with `Invalid` (a bad op,
 * with its index in `what`) or `NoMemory` (allocation or page-table arena), in which case nothing
 * changed; on success the tree already reflects the array and the returned job's fence signals
 * once the page tables do too.
 *
 * @since 0.1.0
 * @category submit
 */
export const submit = (
  q: BindQueue,
  ops: ReadonlyArray<VmBind.BindOp>,
  options: SubmitOptions = {}
): Effect.Effect<BindJob, Invalid | NoMemory | Interrupted | Already> => {
  const vm = q.vm
  return vm.bindLock.withPermit(
    Effect.scoped(
      Effect.gen(function* () {
        const pt = checkArray(vm, ops)
        if (pt instanceof Invalid) return yield* pt
        const objects = [...lockSet(vm, ops)]
        const locked = yield* GpuVm.execLock(vm, 1, (exec) => Exec.prepareArray(exec, objects, 1), {
          interruptible: true
        })
        const noJob = vm.allocator.alloc("job", 1)
        if (noJob !== undefined) return yield* noJob
        return yield* Effect.uninterruptible(
          commit(q, pt, ops, locked, options, (fence) =>
            // past the point of no return: the slots were reserved by execLock, so a failure is a bug
            Effect.orDie(GpuVm.resvAddFence(vm, locked, fence, "bookkeep", "bookkeep"))
          )
        )
      })
    )
  )
}

/**
 * Options of {@link submitLocked}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LockedOptions extends SubmitOptions {
  /** Run `GpuVm.validate` first (`drm_gpuvm_validate()`: evicted vm_bos are moved back). */
  readonly validate?: boolean
  /**
   * Append a `Prefetch` of every VA flagged `Invalidated` to the array (xe `xe_vm_rebind()`), after
   * the validate: one job binds, and rebinds what moved, behind the moves' KERNEL fences.
   */
  readonly rebind?: boolean
}

/** `Prefetch` ops for every invalidated object-backed VA of the VM (xe `xe_vm_rebind()`). */
const rebindOps = (vm: GpuVm.GpuVm<unknown>): Array<VmBind.BindOp> => {
  const out: Array<VmBind.BindOp> = []
  for (const va of vm.space) {
    if (va.obj !== null && va !== vm.space.reserved && (va.flags & Flags.Invalidated) !== 0) {
      out.push(VmBind.prefetch(va.addr, va.range))
    }
  }
  return out
}

/** Witnesses of every resv the array needs (dies `LockNotHeld` when the transaction lacks one), slots reserved. */
const heldForArray = (
  vm: GpuVm.GpuVm<unknown>,
  ops: ReadonlyArray<VmBind.BindOp>,
  locks: GpuVm.Locks
): Array<Held.Held<DmaResv.DmaResv>> | NoMemory => {
  const resvs = new Set([...GpuVm.resvsToLock(vm), ...lockSet(vm, ops)])
  const held = [...resvs].map((r) => GpuVm.heldOf(locks, r))
  for (const h of held) {
    const err = DmaResv.reserveFencesSync(h, 1)
    if (err !== undefined) return new NoMemory({ what: `fence slot on ${h.target.name}: ${err.reason}` })
  }
  return held
}

/**
 * {@link submit} inside the caller's exec transaction — xe's lock → validate → bind → job in ONE
 * `drm_exec` (`xe_vm_bind_ioctl()` / `xe_exec_ioctl()` with `xe_vm_validate_rebind()`). `locks`
 * must hold the VM's resv, every external object's and every object the ops touch (asserted: a
 * `LockNotHeld` defect otherwise, before anything changes); one fence slot is reserved on each and
 * the out-fence is published to exactly those as BOOKKEEP. The VM's bind lock is not taken: it
 * ranks above resv locks (`vm->lock` → resv), and holding the VM resv and every extobj already
 * keeps other submits and invalidations out of the staging. With `validate`, `GpuVm.validate`
 * runs first (its driver error fails the call; vm_bos validated so far stay validated, as in the
 * kernel); with `rebind`, every invalidated VA is rebound by the same job. `ops` may be empty
 * only with `rebind`; `undefined` when there is nothing to bind. A bad op → `Invalid` before the
 * validate; `NoMemory` leaves the tree, vm_bos, page tables and fences as they were. The caller's
 * transaction stays locked; the caller's scope ends it.
 *
 * @since 0.1.0
 * @category submit
 */
export const submitLocked = <E>(
  q: BindQueue<E>,
  ops: ReadonlyArray<VmBind.BindOp>,
  locks: GpuVm.Locks,
  options: LockedOptions = {}
): Effect.Effect<BindJob | undefined, Invalid | NoMemory | E> =>
  Effect.gen(function* () {
    const vm = q.vm
    if (ops.length > 0 || options.rebind !== true) {
      const pt = checkArray(vm, ops)
      if (pt instanceof Invalid) return yield* pt
    }
    GpuVm.heldOf(locks, vm.resv)
    if (options.validate === true) yield* GpuVm.validate(vm, locks)
    const all = options.rebind === true ? [...ops, ...rebindOps(vm)] : ops
    if (all.length === 0) return undefined
    const pt = checkArray(vm, all)
    if (pt instanceof Invalid) return yield* pt
    const held = heldForArray(vm, all, locks)
    if (held instanceof NoMemory) return yield* held
    const noJob = vm.allocator.alloc("job", 1)
    if (noJob !== undefined) return yield* noJob
    return yield* Effect.uninterruptible(
      commit(q, pt, all, locks, options, (fence) =>
        Effect.sync(() => {
          for (const h of held) {
            const err = DmaResv.addFenceSync(h, fence, "bookkeep")
            if (err !== undefined) throw err // slots reserved above: a bug
          }
        })
      )
    )
  })

/** Dies with `LockNotHeld` unless `held` witnesses the resv guarding `obj` in `vm`, held by this task. */
const assertObjectHeld = (vm: GpuVm.GpuVm<unknown>, held: Held.Held<DmaResv.DmaResv>, obj: GemObject): void => {
  if (held.target !== GpuVm.resvOf(vm, obj)) throw new VmBo.LockNotHeld(`invalidate: witness is not ${obj.name}'s resv`)
  if (!Held.isHeld(held)) throw new VmBo.LockNotHeld(`invalidate: ${obj.name}'s resv is not held by this task`)
}

/** Reserves one fence slot on `held` and on the VM resv when this task holds it too. */
const reserveSlots = (vm: GpuVm.GpuVm<unknown>, held: Held.Held<DmaResv.DmaResv>): Invalid | undefined => {
  const vmHeld = held.target === vm.resv ? undefined : DmaResv.heldByMe(vm.resv)
  return DmaResv.reserveFencesSync(held, 1) ?? (vmHeld === undefined ? undefined : DmaResv.reserveFencesSync(vmHeld, 1))
}

/**
 * Invalidates every mapping of `obj` in the queue's VM: flags its VAs `Invalidated` and zaps their
 * PTEs (leaves cleared, no structural change) in a page-table job ordered on `q` like any bind —
 * after the jobs queued before it, after overlapping jobs of other queues (range fences) and
 * after `options.inFences`. The job's out-fence is published as BOOKKEEP to `obj`'s resv (the VM
 * resv for a private object) and to the VM resv when this task holds it too.
 *
 * Models xe's `xe_vm_invalidate_vma()` as called from the move_notify path
 * (`xe_bo_move_notify()` → `xe_bo_trigger_rebind()`) and Nouveau's `nouveau_uvmm_bo_unmap_all()`:
 * the caller holds `obj`'s reservation lock (`held`, asserted — a defect otherwise) but not the
 * VM's bind lock, which is taken before resv locks (`vm->lock` → resv). Every submit locks the VM
 * resv and all extobjs, so it cannot be between planning and queueing while `obj` is held: the
 * page-table shadow and the queue stay in the same order. xe zaps synchronously after waiting for
 * the VM's pending binds; here the queue orders the zap behind them instead, so the caller must
 * not reuse the old pages before the returned job's fence signals (TTM: make the move wait for
 * it). Marking the vm_bos evicted (`VmBo.evictObject`) stays the driver's choice; a later
 * `Prefetch` (or a map over the range) rebinds the VAs to the object's current frames.
 *
 * Returns `undefined` when nothing was valid (no job); fails with `Invalid` (no page tables, a
 * killed VM) or `NoMemory` (job, fence slot or page-table plan), in which case nothing changed.
 *
 * @since 0.1.0
 * @category invalidation
 */
export const invalidate = (
  q: BindQueue,
  held: Held.Held<DmaResv.DmaResv>,
  obj: GemObject,
  options: SubmitOptions = {}
): Effect.Effect<BindJob | undefined, Invalid | NoMemory> =>
  Effect.gen(function* () {
    const vm = q.vm
    const pt = usableTables(vm)
    if (pt instanceof Invalid) return yield* pt
    assertObjectHeld(vm, held, obj)
    const vas: Array<GpuVa> = []
    for (const va of VmBo.peek(vm, obj)?.vas ?? []) if ((va.flags & Flags.Invalidated) === 0) vas.push(va)
    if (vas.length === 0) return undefined
    const noJob = vm.allocator.alloc("job", 1)
    if (noJob !== undefined) return yield* noJob
    const noSlot = reserveSlots(vm, held)
    if (noSlot !== undefined) return yield* new NoMemory({ what: `fence slot: ${noSlot.reason}` })
    const plan = pt.plan(vas.map((va): PageTable.Op => ({ _tag: "Zap", va: va.addr, size: va.range })))
    if (plan instanceof Invalid) return yield* plan
    if (!("descriptors" in plan)) {
      return yield* new NoMemory({ what: `page-table arena (${plan.message})`, requested: plan.requested })
    }
    const update = yield* Effect.result(pt.executor.prepare(plan))
    if (update._tag === "Failure") {
      vm.killed ??= update.failure // the shadow already holds the zap: only a dead device fails here
      return yield* new NoMemory({ what: `page-table job staging: ${update.failure.message}` })
    }
    let lo = vas[0]?.addr
    let hi = vas[0]?.end
    for (const va of vas) {
      va.flags |= Flags.Invalidated
      if (lo === undefined || va.addr < lo) lo = va.addr
      if (hi === undefined || va.end > hi) hi = va.end
    }
    const vmHeld = held.target === vm.resv ? undefined : DmaResv.heldByMe(vm.resv)
    return yield* enqueue(q, pt, plan, update.success, [...(options.inFences ?? [])], [lo, hi], (fence) =>
      Effect.sync(() => {
        for (const h of vmHeld === undefined ? [held] : [held, vmHeld]) {
          const err = DmaResv.addFenceSync(h, fence, "bookkeep")
          if (err !== undefined) throw err // the slots were reserved above: a bug
        }
      })
    )
  })
