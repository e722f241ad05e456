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
 * @since 0.1.0
 */
import { type Already, type Interrupted, Invalid, NoMemory, type NoSpace } from "@drmkit/core"
import type { PageTable } from "@drmkit/gpu"
import { DmaFence, DmaResv, Exec, Held } from "@drmkit/resv-locking"
import { Effect, Queue, type Scope } from "effect"
import * as Allocator from "./Allocator.ts"
import { Flags, type GemObject, type GpuVa } from "./GpuVa.ts"
import * as GpuVm from "./GpuVm.ts"
import { roundOut } from "./internal/rangeFences.ts"
import { Staged } from "./internal/stage.ts"
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

/** Fence contexts of bind queues: their fences are ordered by range fences, not waited for here. */
const bindContexts = new WeakSet<DmaFence.FenceContext>()

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
 * runJob (`drm_sched_backend_ops.run_job` of a bind queue; xe `xe_pt_update_ops_run()` + the PT
 * job): wait for the dependencies (the previous job of the queue has completed: the worker runs
 * one job at a time), then — inside the fence-signalling section, where nothing may be allocated —
 * write the page tables in one submission, retire the tables the plan freed and signal. A job
 * queued behind a failure on a killed VM is not run: it is cancelled with the VM's error (xe
 * signals the jobs of a banned VM with `-ECANCELED`).
 */
const runJob = (q: BindQueue, job: BindJob) =>
  Effect.gen(function* () {
    for (const f of job.deps) yield* Effect.orDie(DmaFence.wait(f))
    const retired = { done: false }
    const exit = yield* Effect.exit(Allocator.signalling(execute(q, job, retired)))
    if (exit._tag === "Success" || job.fence.isSignaled) return
    // an executor error, or a defect (e.g. an allocation in the signalling path): the page tables
    // no longer match the shadow, so the VM dies; the queue itself keeps running (cancelling)
    if (!retired.done) q.vm.pageTables?.retire(job.plan)
    const error = new Error(`page-table job failed: ${String(exit.cause)}`)
    q.vm.killed ??= error
    q.completed += 1
    job.fence.signal(error)
  })

/** The fence-signalling part of a job: run it (unless the VM is dead), retire its tables, signal. */
const execute = (q: BindQueue, job: BindJob, retired: { done: boolean }) =>
  Effect.gen(function* () {
    const killed = q.vm.killed
    if (killed === undefined) yield* job.update.run
    else job.update.release()
    // The job's writes are done: tables it unlinked may be reused by later plans. Retire before
    // signalling, so a waiter woken by the fence sees them free.
    q.vm.pageTables?.retire(job.plan)
    retired.done = true
    q.completed += 1
    job.fence.signal(killed)
  })

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
 * Every reservation object the array may touch besides the VM's and the extobjs'
 * (`drm_gpuvm_sm_map_exec_lock()` per op: the new object, the objects of every VA in range).
 */
const lockSet = (vm: GpuVm.GpuVm<unknown>, ops: ReadonlyArray<VmBind.BindOp>): Set<DmaResv.DmaResv> => {
  const out = new Set<DmaResv.DmaResv>()
  for (const op of ops) {
    if (op._tag === "UnmapAll") out.add(op.obj.resv)
    else {
      if (op._tag === "Map" && op.obj !== null) out.add(op.obj.resv)
      for (const r of GpuVm.resvsOfRange(vm, op.addr, op.range)) out.add(r)
    }
  }
  return out
}

/** Stages and plans the array; unwinds on failure. Synchronous: no other fiber can interleave. */
const stageAndPlan = (
  vm: GpuVm.GpuVm<unknown>,
  pt: PageTables.VmPageTables,
  ops: ReadonlyArray<VmBind.BindOp>,
  locks: GpuVm.Locks
): { stage: Staged; plan: PageTable.Plan } | NoMemory | Invalid => {
  const stage = new Staged(vm.space, vm, vm.allocator, (obj) => GpuVm.heldOfObject(vm, locks, obj), pt.levels)
  const fail = <E>(e: E): E => {
    stage.unwind()
    return e
  }
  for (const op of ops) {
    const err = stage.add(op)
    if (err !== undefined) return fail(err)
  }
  const noPt = vm.allocator.alloc("ptPages", stage.ptWorstCase)
  if (noPt !== undefined) return fail(noPt)
  const plan: PageTable.Plan | Invalid | NoSpace = pt.plan(stage.ptOps)
  if (plan instanceof Invalid) return fail(plan)
  if (!("descriptors" in plan)) {
    return fail(new NoMemory({ what: `page-table arena (${plan.message})`, requested: plan.requested }))
  }
  return { stage, plan }
}

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

/** The array checks of a submit: page tables, a live VM, valid ops, a VA space the tables cover. */
const checkArray = (vm: GpuVm.GpuVm<unknown>, ops: ReadonlyArray<VmBind.BindOp>): PageTables.VmPageTables | Invalid => {
  const pt = usableTables(vm)
  if (pt instanceof Invalid) return pt
  const bad = VmBind.check(vm.space, ops)
  if (bad !== undefined) return bad
  if (vm.space.end > pt.vaLimit)
    return new Invalid({ what: "vm", reason: "VA space larger than the page tables can map" })
  return pt
}

/**
 * Implicit dependencies (xe `xe_pt_vm_dependencies()`): a job that unmaps or remaps anything
 * waits for every unsignalled fence on the VM's resv that is not a bind job (GPU work that may
 * still use the old mappings, BOOKKEEP); a job writing PTEs that point at an object's pages — a
 * map, or a prefetch rebinding a moved object — waits for its KERNEL fences (a move must finish
 * before its new pages are mapped).
 */
const implicitDeps = (vm: GpuVm.GpuVm<unknown>, stage: Staged) =>
  Effect.gen(function* () {
    const out: Array<DmaFence.DmaFence> = []
    if (stage.removed.length > 0) {
      for (const f of yield* DmaResv.getFences(vm.resv, "bookkeep")) if (!bindContexts.has(f.context)) out.push(f)
    }
    const resvs = new Set<DmaResv.DmaResv>()
    for (const obj of stage.mapped) resvs.add(GpuVm.resvOf(vm, obj))
    for (const r of resvs) out.push(...(yield* DmaResv.getFences(r, "kernel")))
    return out
  }).pipe(Effect.orDie)

const commit = (
  q: BindQueue,
  pt: PageTables.VmPageTables,
  ops: ReadonlyArray<VmBind.BindOp>,
  locked: GpuVm.Locks,
  options: SubmitOptions,
  publish: (fence: DmaFence.DmaFence) => Effect.Effect<void>
): Effect.Effect<BindJob, Invalid | NoMemory> =>
  Effect.gen(function* () {
    const vm = q.vm
    const staged = stageAndPlan(vm, pt, ops, locked)
    if (staged instanceof Invalid || staged instanceof NoMemory) return yield* staged
    const { stage, plan } = staged
    const update = yield* Effect.result(pt.executor.prepare(plan))
    if (update._tag === "Failure") {
      // only a dead device fails here; the shadow already holds the plan, so the VM is dead too
      stage.unwind()
      vm.killed ??= update.failure
      return yield* new NoMemory({ what: `page-table job staging: ${update.failure.message}` })
    }
    stage.commit()
    const deps = [...(options.inFences ?? []), ...(yield* implicitDeps(vm, stage))]
    return yield* enqueue(q, pt, plan, update.success, deps, [stage.lo, stage.hi], publish)
  })

/**
 * Queues a planned and staged job: its out-fence, range fence (the hull `[lo, hi)` rounded to the
 * plan's top level, when it writes anything) and the conflicts with other queues, publication
 * through `publish`, then the queue. Synchronous up to the offer: nothing can interleave.
 */
const enqueue = (
  q: BindQueue,
  pt: PageTables.VmPageTables,
  plan: PageTable.Plan,
  update: PageTables.Prepared,
  deps: Array<DmaFence.DmaFence>,
  [lo, hi]: readonly [bigint | undefined, bigint | undefined],
  publish: (fence: DmaFence.DmaFence) => Effect.Effect<void>
): Effect.Effect<BindJob> =>
  Effect.gen(function* () {
    const fence = DmaFence.make(q.context)
    let span: readonly [bigint, bigint] | undefined
    if (lo !== undefined && hi !== undefined && plan.descriptors.length > 0) {
      span = roundOut(lo, hi, pt.topLevel(plan))
      deps.push(...q.vm.rangeFences.conflicts(span[0], span[1], q.id))
      q.vm.rangeFences.add(span[0], span[1], q.id, fence)
    }
    yield* publish(fence)
    const job: BindJob = { fence, plan, update, deps, span }
    q.last = fence
    q.submitted += 1
    yield* Queue.offer(q.jobs, job)
    return job
  })

/** The checks every job needs: page tables, a live VM. */
const usableTables = (vm: GpuVm.GpuVm<unknown>): PageTables.VmPageTables | Invalid => {
  const pt = vm.pageTables
  if (pt === undefined) return new Invalid({ what: "vm", reason: "VM_BIND needs a VM with page tables" })
  if (vm.killed !== undefined) {
    return new Invalid({ what: "vm", reason: `killed by a failed page-table job (ECANCELED): ${vm.killed.message}` })
  }
  return pt
}

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
