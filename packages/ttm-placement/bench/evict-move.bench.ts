/**
 * Evict-and-move throughput (goal ≥ 80 % of raw copy bandwidth): VRAM is full of 2 MiB BOs; each
 * round validates as many 2 MiB BOs from TT into VRAM, so every validate evicts the LRU VRAM BO to
 * TT (a GPU copy) and moves the new one in (another GPU copy) — 4 MiB moved per validate, all of
 * TTM's bookkeeping included (LRU walk, trylock, allocation, fences into the resvs, ghosts /
 * pipelined frees). Timed until the GPU finished every copy.
 *
 * Peer, same run, same device: the raw GPU copy of the same bytes — the same number of 2 MiB
 * `copyBufferToBuffer` jobs between the same two arena buffers, no TTM. Rounds are paired (order
 * alternating every two pairs) and the ratio is the median of the per-pair ratios, so machine
 * noise hits both sides of a pair alike.
 */
import { median, report } from "@drmkit/bench-kit"
import { Device, Lifecycle, Managers, Placement, Reserve, Validate } from "@drmkit/ttm-placement"
import { Effect, References } from "effect"

const MiB = 1 << 20
const BO = 2 * MiB
const VRAM_BOS = 32
const REPS = 25
const { MemType, place, PAGE_SIZE } = Placement

const program = Effect.scoped(
  Effect.gen(function* () {
    const dev = yield* Device.make({
      managers: [
        { memType: MemType.VRAM, name: "vram", backend: Managers.buddyBackend((VRAM_BOS * BO) / PAGE_SIZE) },
        { memType: MemType.TT, name: "tt", backend: Managers.rangeBackend((3 * VRAM_BOS * BO) / PAGE_SIZE) }
      ]
    })
    const vram = [place(MemType.VRAM)]
    const a = yield* Effect.forEach(Array.from({ length: VRAM_BOS }), () => Lifecycle.create(dev, { size: BO }, vram))
    const b = yield* Effect.forEach(Array.from({ length: VRAM_BOS }), () =>
      Lifecycle.create(dev, { size: BO }, [place(MemType.TT)])
    )
    yield* Device.drain(dev)
    const round = (incoming: ReadonlyArray<(typeof a)[number]>) =>
      Effect.gen(function* () {
        const ctx = Device.opCtx()
        const t0 = performance.now()
        for (const bo of incoming) yield* Reserve.withReserved(bo, (h) => Validate.validate(h, bo, vram, ctx))
        const tv = performance.now()
        yield* Device.drain(dev)
        if (process.env.PROF) console.log("cpu", (tv - t0).toFixed(1), "drain", (performance.now() - tv).toFixed(1))
        const ms = performance.now() - t0
        if (ctx.bytesMoved < incoming.length * BO) throw new Error("nothing moved")
        return { ms, bytes: dev.stats.bytesMoved }
      })
    const gpu = dev.storage.gpu
    const vramBuf = dev.storage.arenas.get(MemType.VRAM)
    const ttBuf = dev.storage.arenas.get(MemType.TT)
    if (vramBuf === undefined || ttBuf === undefined) throw new Error("no arenas")
    const rawRound = (copies: number) =>
      Effect.gen(function* () {
        const t0 = performance.now()
        for (let i = 0; i < copies; i++) {
          const [src, dst] = i % 2 === 0 ? [vramBuf, ttBuf] : [ttBuf, vramBuf]
          const at = (i % VRAM_BOS) * BO
          gpu.copy([], [{ buffer: src, offset: at, size: BO }], [{ buffer: dst, offset: at, size: BO }])
        }
        yield* Effect.promise(() => gpu.drain())
        return performance.now() - t0
      })
    // Paired and interleaved (TTM round, raw round, ...; the order flips every pair) so both sides
    // of a pair see the same machine noise; the ratio is the median of the per-pair ratios.
    const ttm: Array<number> = []
    const raw: Array<number> = []
    const ratios: Array<number> = []
    let moved = 0
    for (let rep = 0; rep < REPS; rep++) {
      const before = dev.stats.bytesMoved
      const rawFirst = rep % 4 >= 2
      const r0 = rawFirst && moved > 0 ? yield* rawRound(moved / BO) : undefined
      const r = yield* round(rep % 2 === 0 ? b : a)
      moved = r.bytes - before
      const peerMs = r0 ?? (yield* rawRound(moved / BO))
      if (rep === 0) continue // warm-up
      ttm.push(r.ms)
      raw.push(peerMs)
      ratios.push(peerMs / r.ms)
    }
    const gbps = (ms: number) => moved / (ms / 1000) / 1e9
    const ours = gbps(median(ttm))
    const peer = gbps(median(raw))
    const ratio = median(ratios)
    console.log(`device: ${gpu.adapterName}; ${moved / MiB} MiB moved per round (${moved / BO} copies of 2 MiB)`)
    report("evict-move", [
      {
        name: "evict-and-move throughput (VRAM full of 2 MiB BOs)",
        value: ours,
        unit: "GB/s",
        peer: "raw GPU copy, same bytes",
        peerValue: peer,
        ratio,
        goal: ">= 80% of raw copy (median per-pair ratio)",
        pass: ratio >= 0.8
      }
    ])
    void Reserve
  })
)

await Effect.runPromise(
  process.env.NOYIELD ? program.pipe(Effect.provideService(References.MaxOpsBeforeYield, 1_000_000)) : program
)
