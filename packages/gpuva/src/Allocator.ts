/**
 * The allocation hook of the VM_BIND path.
 *
 * In the kernel, `run_job()` of a bind queue runs in the dma-fence signalling path: it must not
 * allocate memory with `GFP_KERNEL` (reclaim could wait on the very fence being signalled), so every
 * VA struct, vm_bo and page-table page a job needs is allocated at submit time (the v5 drm_gpuvm RFC
 * discussion; panthor's `panthor_vm_op_ctx`, xe's `xe_vma_ops` preallocation). drmkit makes every
 * such allocation go through an {@link Allocator}, so a test can make any allocation inside
 * `runJob` throw and prove that none happens there.
 *
 * @since 0.1.0
 */
import { NoMemory } from "@drmkit/core"
import { Context, Effect, Fiber } from "effect"

/**
 * What is being allocated (for accounting and for fault injection): `struct drm_gpuva`, `struct
 * drm_gpuvm_bo`, page-table pages, the job (`kmalloc` / `xe_pt_create()` at submit time).
 *
 * @since 0.1.0
 * @category models
 */
export type AllocKind = "va" | "vmBo" | "ptPages" | "job"

/**
 * An allocation hook: called once per allocated object (or once per batch of page-table pages,
 * with `count`). Returning a {@link NoMemory} fails the allocation (`-ENOMEM`); throwing is a
 * defect (used by tests to prove that a path allocates nothing).
 *
 * @since 0.1.0
 * @category models
 */
export interface Allocator {
  readonly alloc: (kind: AllocKind, count: number) => NoMemory | undefined
}

/**
 * The default allocator: never fails (`GFP_KERNEL` that always succeeds).
 *
 * @since 0.1.0
 * @category constructors
 */
export const unlimited: Allocator = { alloc: () => undefined }

/**
 * Counts allocations per kind (an {@link Allocator} that also records what it saw), with fault
 * injection like the kernel's `failslab` / `fail_page_alloc`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counting extends Allocator {
  readonly counts: Record<AllocKind, number>
  /** When set, the next allocations fail with `NoMemory` once `failAfter` more have succeeded. */
  failAfter: number | undefined
  /** When true, every allocation inside a {@link signalling} section throws. */
  forbidInSignalling: boolean
}

/**
 * An allocator that counts and can inject `-ENOMEM` after N allocations or forbid allocation in
 * fence-signalling sections.
 *
 * @since 0.1.0
 * @category constructors
 */
export const counting = (): Counting => {
  const self: Counting = {
    counts: { va: 0, vmBo: 0, ptPages: 0, job: 0 },
    failAfter: undefined,
    forbidInSignalling: false,
    alloc: (kind, count) => {
      if (self.forbidInSignalling && inSignallingPath())
        throw new Error(`allocation of ${count} ${kind} in a path that must not allocate`)
      if (self.failAfter !== undefined) {
        if (self.failAfter <= 0) return new NoMemory({ what: `gpuva ${kind}`, requested: count })
        self.failAfter -= 1
      }
      self.counts[kind] += count
      return undefined
    }
  }
  return self
}

/**
 * Nesting depth of fence-signalling sections of the running fiber (and of fibers it forks): the
 * per-task state behind `dma_fence_begin_signalling()` (lockdep's `dma_fence_lockdep_map`).
 *
 * @since 0.1.0
 * @category signalling
 */
export const SignallingDepth = Context.Reference<number>("@drmkit/gpuva/SignallingDepth", { defaultValue: () => 0 })

/**
 * Whether a fence-signalling section is running (`dma_fence_begin_signalling()` was called and
 * `dma_fence_end_signalling()` not yet). Synchronous, so allocation hooks can ask it.
 *
 * @since 0.1.0
 * @category signalling
 */
export const inSignallingPath = (): boolean => (Fiber.getCurrent()?.getRef(SignallingDepth) ?? 0) > 0

/**
 * Runs `effect` as a fence-signalling critical section (`dma_fence_begin_signalling()` /
 * `dma_fence_end_signalling()`): the part of a job between "it may run" and "its fence signals",
 * where memory allocation is forbidden. Scoped to the fiber (task) like lockdep's per-task
 * annotation, via {@link SignallingDepth}. An allocator with `forbidInSignalling` throws on any
 * allocation inside it.
 *
 * @since 0.1.0
 * @category signalling
 */
export const signalling = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.updateService(effect, SignallingDepth, (d) => d + 1)
