/**
 * Fences as TTM sees them (`struct dma_fence`): move jobs, writes and reads complete as fences in
 * the BO's reservation. Until @drmkit/resv-locking's `DmaFence` is wired in, this is a minimal
 * signal-once fence with callbacks.
 *
 * @since 0.1.0
 */
import { allOf, type FenceLike, JobFence, whenSignaled } from "./internal/fence.ts"

/**
 * The fence interface TTM consumes.
 *
 * @since 0.1.0
 * @category models
 */
export type Fence = FenceLike

/**
 * A fence that signals once (`dma_fence_init` + `dma_fence_signal`).
 *
 * @since 0.1.0
 * @category models
 */
export { JobFence }

/**
 * A new unsignalled fence.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name = "fence"): JobFence => new JobFence(name)

/**
 * A fence that signals when all of `fences` have (`dma_fence_array`, signal on all).
 *
 * @since 0.1.0
 * @category constructors
 */
export const all: (name: string, fences: ReadonlyArray<FenceLike>) => JobFence = allOf

/**
 * Resolves once `f` has signalled.
 *
 * @since 0.1.0
 * @category waiting
 */
export const signaled: (f: FenceLike) => Promise<void> = whenSignaled
