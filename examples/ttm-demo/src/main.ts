/**
 * `node examples/ttm-demo/dist/main.js`: TTM on real GPU buffers. A device with 8 MiB of VRAM
 * (buddy manager) and 16 MiB of TT (range manager) and a global cap on populated TT pages; BOs get
 * distinct contents, then VRAM pressure evicts the least recently used ones to TT, a pinned BO
 * stays put, a driver hook forces VRAM → SYSTEM moves through a TT bounce (multihop), the page cap
 * swaps BOs out to host memory, and every BO's contents are checked on the GPU after each act.
 */
import {
  Access,
  type BufferObject,
  Debug,
  Device,
  Lifecycle,
  Managers,
  Pin,
  Placement,
  Reserve,
  Validate
} from "@drmkit/ttm-placement"
import { Effect } from "effect"

const MiB = 1 << 20
const { MemType, place, PAGE_SIZE, PlaceFlags } = Placement
const typeName = ["SYSTEM", "TT", "VRAM"]

const where = (bo: BufferObject.Bo): string => {
  const r = bo.resource
  if (r === undefined) return "(no backing)"
  const t = typeName[r.memType] ?? `mem${r.memType}`
  if (bo.swapped) return `${t} (swapped to host)`
  return r.memType === MemType.SYSTEM ? t : `${t} @${((r.start * PAGE_SIZE) / MiB).toFixed(2)} MiB`
}

const pattern = (size: number, seed: number): Uint8Array => {
  const w = new Uint32Array(size / 4)
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i + 1, 2654435761) ^ seed
  return new Uint8Array(w.buffer)
}

const main = Effect.scoped(
  Effect.gen(function* () {
    const dev = yield* Device.make({
      managers: [
        { memType: MemType.VRAM, name: "vram", backend: Managers.buddyBackend((8 * MiB) / PAGE_SIZE) },
        { memType: MemType.TT, name: "tt", backend: Managers.rangeBackend((16 * MiB) / PAGE_SIZE) }
      ],
      pageLimit: (8 * MiB) / PAGE_SIZE
    })
    console.log(`drmkit TTM demo on ${dev.storage.gpu.adapterName}`)
    console.log("VRAM 8 MiB (buddy), TT 16 MiB (range), populated-TT cap 8 MiB (SYSTEM + TT pages)\n")

    const bos: Array<BufferObject.Bo> = []
    const expected = new Map<BufferObject.Bo, number>()
    const snapshot = () => new Map(bos.map((b) => [b, where(b)]))
    const report = (before: Map<BufferObject.Bo, string>) => {
      for (const b of bos) {
        const now = where(b)
        if (before.get(b) !== now)
          console.log(`     ${b.name.padEnd(8)} ${String(before.get(b) ?? "new").padEnd(24)} -> ${now}`)
      }
    }
    const verify = Effect.gen(function* () {
      const sums = yield* Debug.checksums(dev, bos)
      const bad = bos.filter((b, i) => sums[i] !== expected.get(b))
      const v = Debug.violations(dev)
      console.log(
        `   GPU checksums: ${bos.length - bad.length}/${bos.length} BOs intact; ` +
          `usage vram ${(dev.manager(MemType.VRAM)?.usage ?? 0) / MiB} MiB, tt ${(dev.manager(MemType.TT)?.usage ?? 0) / MiB} MiB; ` +
          `${v.length === 0 ? "invariants hold" : `VIOLATIONS: ${v.join("; ")}`}\n`
      )
      if (bad.length > 0 || v.length > 0) return yield* Effect.die(new Error("contents or invariants lost"))
    })
    const act = <A, E>(title: string, eff: Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        console.log(title)
        const before = snapshot()
        const moved0 = dev.stats.bytesMoved
        const r = yield* eff
        report(before)
        console.log(`   bytes moved: ${(dev.stats.bytesMoved - moved0) / MiB} MiB`)
        yield* verify
        return r
      })

    yield* act(
      "1. create four 2 MiB BOs in VRAM and fill them (writes are GPU jobs publishing WRITE fences)",
      Effect.forEach([0, 1, 2, 3], (i) =>
        Effect.gen(function* () {
          const bo = yield* Lifecycle.create(dev, { size: 2 * MiB, name: `bo${i}` }, [place(MemType.VRAM)])
          const data = pattern(bo.size, i + 1)
          yield* Reserve.withReserved(bo, (h) => Access.write(h, bo, data))
          bos.push(bo)
          expected.set(bo, Access.checksumOf(data))
        })
      )
    )
    const [bo0, bo1] = bos
    if (bo0 === undefined || bo1 === undefined) return
    yield* act(
      "2. pin bo1 (it leaves the LRU), use bo0 (unreserve bumps it to the LRU tail)",
      Effect.gen(function* () {
        yield* Reserve.withReserved(bo1, (h) => Pin.pin(h, bo1))
        yield* Reserve.withReserved(bo0, () => Effect.void)
      })
    )
    yield* act(
      "3. two new 2 MiB BOs want VRAM: VRAM is full, so the LRU victims (bo2, bo3 — not pinned bo1, not fresh bo0) are evicted to TT by GPU copies",
      Effect.forEach([4, 5], (i) =>
        Effect.gen(function* () {
          const bo = yield* Lifecycle.create(dev, { size: 2 * MiB, name: `bo${i}` }, [place(MemType.VRAM)])
          bos.push(bo)
          expected.set(bo, Access.checksumOf(new Uint8Array(bo.size)))
        })
      )
    )
    yield* act(
      "4. validate bo1 (pinned) to TT: Invalid, nothing moves; to VRAM|TT: already compatible, no move",
      Reserve.withReserved(bo1, (h) =>
        Effect.gen(function* () {
          const e = yield* Effect.flip(Validate.validate(h, bo1, [place(MemType.TT)]))
          console.log(`   validate(bo1, [TT]) -> ${e._tag}`)
          yield* Validate.validate(h, bo1, [place(MemType.VRAM), place(MemType.TT)])
          console.log("   validate(bo1, [VRAM, TT]) -> ok")
        })
      )
    )
    dev.funcs = {
      ...dev.funcs,
      move: (bo, to) =>
        bo.resource?.memType === MemType.VRAM && to.memType === MemType.SYSTEM
          ? { _tag: "Hop", place: place(MemType.TT) }
          : { _tag: "Copy" }
    }
    yield* act(
      "5. driver hook: VRAM -> SYSTEM needs a bounce through TT (multihop): bo0 goes VRAM -> TT(TEMPORARY) -> SYSTEM (2 hops = 4 MiB moved)",
      Reserve.withReserved(bo0, (h) => Validate.validate(h, bo0, [place(MemType.SYSTEM)]))
    )
    yield* act(
      "6. DESIRED VRAM / FALLBACK TT: three new 2 MiB BOs; pass 1 never evicts, so they land in VRAM while it fits, then in TT — and populated pages beyond the 8 MiB cap swap the LRU BOs out to host memory",
      Effect.forEach([6, 7, 8], (i) =>
        Effect.gen(function* () {
          const bo = yield* Lifecycle.create(dev, { size: 2 * MiB, name: `bo${i}` }, [
            place(MemType.VRAM, { flags: PlaceFlags.DESIRED }),
            place(MemType.TT, { flags: PlaceFlags.FALLBACK })
          ])
          const data = pattern(bo.size, i + 1)
          yield* Reserve.withReserved(bo, (h) => Access.write(h, bo, data))
          bos.push(bo)
          expected.set(bo, Access.checksumOf(data))
        })
      )
    )
    const swapped = bos.find((b) => b.swapped)
    if (swapped !== undefined) {
      yield* act(
        `7. touch ${swapped.name}: the access swaps it back in (populate) — over the cap again, so the LRU TT BO is swapped out to make room; contents intact`,
        Reserve.withReserved(swapped, (h) => Access.checksum(h, swapped))
      )
    }
    yield* act(
      "8. unpin bo1 and release everything (idle BOs are freed at once; busy ones become zombies)",
      Effect.gen(function* () {
        yield* Reserve.withReserved(bo1, (h) => Pin.unpin(h, bo1))
        for (const b of bos.splice(0)) yield* Lifecycle.release(b)
        yield* Device.drain(dev)
        yield* Lifecycle.flushDelayed(dev)
      })
    )
    const s = dev.stats
    console.log(
      `totals: ${s.moves} moves, ${s.evictions} evictions, ${s.swapouts} swapouts, ${s.swapins} swap-ins, ` +
        `${(s.bytesMoved / MiB).toFixed(0)} MiB moved, ${dev.storage.gpu.jobs} GPU jobs; leaks: ${JSON.stringify(Debug.leaks(dev))}`
    )
  })
)

Effect.runPromise(main).catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
