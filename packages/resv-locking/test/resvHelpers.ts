/** Shared helpers of the dma_resv tests. */
import { DmaFence, DmaResv, type Held } from "@drmkit/resv-locking"
import { Effect } from "effect"

export const usages: ReadonlyArray<DmaResv.Usage> = ["kernel", "write", "read", "bookkeep"]

/** Runs `f` with `resv` locked without a ctx (`dma_resv_lock(obj, NULL)`), then unlocks. */
export const locked = <A, E>(resv: DmaResv.DmaResv, f: (held: Held.Held<DmaResv.DmaResv>) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const held = yield* DmaResv.lock(resv)
    const a = yield* f(held)
    yield* DmaResv.unlock(held)
    return a
  })

export const withFence = (usage: DmaResv.Usage) =>
  Effect.gen(function* () {
    const resv = DmaResv.make("st")
    const f = DmaFence.make(DmaFence.contextAlloc("st"))
    yield* locked(resv, (held) =>
      Effect.gen(function* () {
        yield* DmaResv.reserveFences(held, 1)
        yield* DmaResv.addFence(held, f, usage)
      })
    )
    return { resv, f }
  })

export const entries = (resv: DmaResv.DmaResv, usage: DmaResv.Usage = "bookkeep") =>
  locked(resv, (held) =>
    Effect.sync(() => {
      const it = DmaResv.iter(held, usage)
      const out: Array<[DmaFence.DmaFence, DmaResv.Usage]> = []
      for (const f of it) out.push([f, it.usage])
      return out
    })
  )

/** The table as [fence, usage] pairs, read with the locked iterator (lock held by the caller). */
export const table = (held: Held.Held<DmaResv.DmaResv>) => {
  const it = DmaResv.iter(held, "bookkeep")
  const out: Array<[DmaFence.DmaFence, DmaResv.Usage]> = []
  for (const f of it) out.push([f, it.usage])
  return out
}

/** A locked resv with `slots` reserved and a fresh fence context. */
export const setup = (slots: number) =>
  Effect.gen(function* () {
    const resv = DmaResv.make("rules")
    const held = yield* DmaResv.lock(resv)
    yield* DmaResv.reserveFences(held, slots)
    return { resv, held, ctx: DmaFence.contextAlloc("ring") }
  })
