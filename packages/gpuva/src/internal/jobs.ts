/**
 * The job machinery behind `BindQueue`: the run side (runJob in the fence-signalling section) and
 * the submit side shared by `submit`, `submitLocked` and `invalidate` (array checks, the lock set,
 * staging + planning with unwind, implicit dependencies, commit and queueing with range fences).
 */
import { Invalid, NoMemory, type NoSpace } from "@drmkit/core"
import type { PageTable } from "@drmkit/gpu"
import { DmaFence, DmaResv } from "@drmkit/resv-locking"
import { Effect, Queue } from "effect"
import * as Allocator from "../Allocator.ts"
import type { BindJob, BindQueue, SubmitOptions } from "../BindQueue.ts"
import * as GpuVm from "../GpuVm.ts"
import type * as PageTables from "../PageTables.ts"
import * as VmBind from "../VmBind.ts"
import { roundOut } from "./rangeFences.ts"
import { Staged } from "./stage.ts"

/** Fence contexts of bind queues: their fences are ordered by range fences, not waited for here. */
export const bindContexts = new WeakSet<DmaFence.FenceContext>()
/**
 * runJob (`drm_sched_backend_ops.run_job` of a bind queue; xe `xe_pt_update_ops_run()` + the PT
 * job): wait for the dependencies (the previous job of the queue has completed: the worker runs
 * one job at a time), then — inside the fence-signalling section, where nothing may be allocated —
 * write the page tables in one submission, retire the tables the plan freed and signal. A job
 * queued behind a failure on a killed VM is not run: it is cancelled with the VM's error (xe
 * signals the jobs of a banned VM with `-ECANCELED`).
 */
export const runJob = (q: BindQueue, job: BindJob) =>
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
 * Every reservation object the array may touch besides the VM's and the extobjs'
 * (`drm_gpuvm_sm_map_exec_lock()` per op: the new object, the objects of every VA in range).
 */
export const lockSet = (vm: GpuVm.GpuVm<unknown>, ops: ReadonlyArray<VmBind.BindOp>): Set<DmaResv.DmaResv> => {
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

/** The array checks of a submit: page tables, a live VM, valid ops, a VA space the tables cover. */
export const checkArray = (
  vm: GpuVm.GpuVm<unknown>,
  ops: ReadonlyArray<VmBind.BindOp>
): PageTables.VmPageTables | Invalid => {
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

export const commit = (
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
export const enqueue = (
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
export const usableTables = (vm: GpuVm.GpuVm<unknown>): PageTables.VmPageTables | Invalid => {
  const pt = vm.pageTables
  if (pt === undefined) return new Invalid({ what: "vm", reason: "VM_BIND needs a VM with page tables" })
  if (vm.killed !== undefined) {
    return new Invalid({ what: "vm", reason: `killed by a failed page-table job (ECANCELED): ${vm.killed.message}` })
  }
  return pt
}
