/**
 * The one place where @drmkit/gpu creates, signals and waits for fences: GPU job completion is a
 * `dma_fence` from @drmkit/resv-locking, one fence context per queue (`dma_fence_context_alloc`).
 */
import { DmaFence } from "@drmkit/resv-locking"
import { Effect } from "effect"

export type Fence = DmaFence.DmaFence
export type FenceContext = DmaFence.FenceContext

export const contextAlloc = (name: string): FenceContext => DmaFence.contextAlloc(name)
export const make = (ctx: FenceContext): Fence => DmaFence.make(ctx)
export const signal = (f: Fence, error?: Error): boolean => f.signal(error)
/** Waits without timeout; job fences signal from `onSubmittedWorkDone` (or with an error on loss). */
export const wait = (f: Fence): Effect.Effect<void> => DmaFence.wait(f).pipe(Effect.orDie, Effect.asVoid)
