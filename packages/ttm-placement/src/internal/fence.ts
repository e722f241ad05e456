/**
 * Fences TTM creates (GPU jobs, fence aggregates) are `DmaFence`s of @drmkit/resv-locking.
 */
import { DmaFence } from "@drmkit/resv-locking"

/** A fence as TTM consumes it. */
export type FenceLike = DmaFence.DmaFence

const ttmContext = DmaFence.contextAlloc("ttm")

/** A new unsignalled fence on the context `ctx` (default: TTM's own timeline). */
export const newFence = (ctx: DmaFence.FenceContext = ttmContext): DmaFence.DmaFence => DmaFence.make(ctx)

/** Resolves when `f` has signalled (immediately when it already has). */
export const whenSignaled = (f: FenceLike): Promise<void> =>
  new Promise<void>((resolve) => {
    if (!f.addCallback(() => resolve())) resolve()
  })

const parts = new WeakMap<FenceLike, ReadonlyArray<FenceLike>>()

/** The fences an {@link allOf} aggregate stands for (itself for a plain fence), recursively. */
export const leaves = (f: FenceLike): Array<FenceLike> => {
  const p = parts.get(f)
  return p === undefined ? [f] : p.flatMap(leaves)
}

/**
 * A fence that signals when every fence of `fs` has (`dma_fence_array`, signal on all). One
 * pending fence is returned as is (no aggregate), like `dma_fence_unwrap_merge` of one fence.
 */
export const allOf = (fs: ReadonlyArray<FenceLike>): DmaFence.DmaFence => {
  const pending: Array<FenceLike> = []
  for (const f of fs) if (!f.isSignaled) pending.push(f)
  const only = pending[0]
  if (pending.length === 1 && only !== undefined) return only
  const out = newFence()
  parts.set(out, pending)
  let left = pending.length
  if (left === 0) out.signal()
  const done = () => {
    left--
    if (left === 0) out.signal()
  }
  for (const f of pending) if (!f.addCallback(done)) done()
  return out
}
