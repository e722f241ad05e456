/**
 * Fences as TTM sees them: `DmaFence`s of @drmkit/resv-locking. Move jobs, writes and reads
 * complete as fences in the BO's reservation; a manager remembers its last pipelined move fence.
 *
 * @since 0.1.0
 */
import type { DmaFence } from "@drmkit/resv-locking"
import { allOf, type FenceLike, newFence, whenSignaled } from "./internal/fence.ts"

/**
 * The fence type TTM consumes (`struct dma_fence`).
 *
 * @since 0.1.0
 * @category models
 */
export type Fence = FenceLike

/**
 * A new unsignalled fence on `context` (default: TTM's own timeline).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (context?: DmaFence.FenceContext): FenceLike => newFence(context)

/**
 * A fence that signals when all of `fences` have (`dma_fence_array`, signal on all); a single
 * pending fence is returned itself.
 *
 * @since 0.1.0
 * @category constructors
 */
export const all: (fences: ReadonlyArray<FenceLike>) => FenceLike = allOf

/**
 * Resolves once `f` has signalled.
 *
 * @since 0.1.0
 * @category waiting
 */
export const signaled: (f: FenceLike) => Promise<void> = whenSignaled
