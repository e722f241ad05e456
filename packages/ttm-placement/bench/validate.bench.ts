/**
 * `validate` of an already-compatible BO (goal ≥ 1 M/s): the common case of every command
 * submission, which must cost next to nothing — no allocation, no move, bytesMoved unchanged.
 * Peer: the bare synchronous compatibility predicate the fast path runs (`ResourceManager.compatible`),
 * so the ratio is the price of the Effect shell (held-witness check, placement check, Effect run).
 */
import { median, report } from "@drmkit/bench-kit"
import { Device, Lifecycle, Managers, Placement, Reserve, Validate } from "@drmkit/ttm-placement"
import { Effect } from "effect"

const N = 200_000
const { MemType, place, PAGE_SIZE, PlaceFlags } = Placement

const program = Effect.scoped(
  Effect.gen(function* () {
    const dev = yield* Device.make({
      managers: [{ memType: MemType.VRAM, name: "vram", backend: Managers.buddyBackend((64 << 20) / PAGE_SIZE) }]
    })
    const bo = yield* Lifecycle.create(dev, { size: 1 << 20 }, [place(MemType.VRAM)])
    const placement = [
      place(MemType.VRAM, { flags: PlaceFlags.DESIRED }),
      place(MemType.TT, { flags: PlaceFlags.FALLBACK })
    ]
    const h = yield* Reserve.reserve(bo)
    const ctx = Device.opCtx()
    const ours: Array<number> = []
    const peer: Array<number> = []
    for (let rep = 0; rep < 7; rep++) {
      const t0 = performance.now()
      for (let i = 0; i < N; i++) yield* Validate.validate(h, bo, placement, ctx)
      ours.push(performance.now() - t0)
      const man = dev.manager(MemType.VRAM)
      const res = bo.resource
      let hits = 0
      const t1 = performance.now()
      for (let i = 0; i < N; i++) if (res && man?.compatible(res, placement[0] ?? place(0))) hits++
      peer.push(performance.now() - t1)
      if (hits !== N) throw new Error("peer check failed")
    }
    yield* Reserve.unreserve(h, bo)
    if (ctx.bytesMoved !== 0) throw new Error("a compatible validate moved bytes")
    const rate = N / (median(ours.slice(2)) / 1000)
    const peerRate = N / (median(peer.slice(2)) / 1000)
    report("validate", [
      {
        name: "validate, already compatible (ops/s)",
        value: rate,
        unit: "ops/s",
        peer: "sync compatible() predicate",
        peerValue: peerRate,
        ratio: rate / peerRate,
        goal: ">= 1,000,000 ops/s",
        pass: rate >= 1_000_000
      }
    ])
  })
)

await Effect.runPromise(program)
