/**
 * "Nothing lost" (issue §4): random operations — create, write, validate to random placements,
 * pin/unpin, evict-all, swapout, busy fences, release while busy, and validates interrupted at a
 * random point — over small VRAM/TT regions with a tight global page limit. After every step:
 * every live BO's GPU checksum equals the checksum of what was written, usage counters equal the
 * sum of resources, every resource is on exactly one list, no BO is in two places; at the end
 * everything is released and nothing leaks.
 */

import {
  Access,
  type BufferObject,
  Debug,
  Device,
  Eviction,
  Fence,
  Lifecycle,
  Pin,
  Reserve,
  Validate
} from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import fc from "fast-check"
import { KiB, MemType, makeDevice, PAGE_SIZE, PlaceFlags, pattern, place } from "./helpers.ts"

const PLACEMENTS = [
  [place(MemType.VRAM)],
  [place(MemType.TT)],
  [place(MemType.SYSTEM)],
  [place(MemType.VRAM, { flags: PlaceFlags.DESIRED }), place(MemType.TT, { flags: PlaceFlags.FALLBACK })],
  [place(MemType.VRAM, { fpfn: 32, lpfn: 96 })],
  [place(MemType.VRAM, { flags: PlaceFlags.CONTIGUOUS | PlaceFlags.TOPDOWN })],
  [place(MemType.TT, { flags: PlaceFlags.TOPDOWN }), place(MemType.SYSTEM)],
  []
] as const

type Op =
  | { readonly k: "create"; readonly pages: number; readonly where: number; readonly prio: number }
  | { readonly k: "write"; readonly i: number; readonly seed: number }
  | { readonly k: "validate"; readonly i: number; readonly where: number; readonly interruptAfter: number }
  | { readonly k: "pin" | "unpin" | "busy" | "release"; readonly i: number }
  | { readonly k: "evictAll"; readonly tt: boolean }
  | { readonly k: "swapout" }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("create" as const),
      pages: fc.integer({ min: 1, max: 24 }),
      where: fc.nat(6),
      prio: fc.nat(3)
    })
  },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant("write" as const), i: fc.nat(), seed: fc.integer({ min: 1, max: 1 << 30 }) })
  },
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant("validate" as const),
      i: fc.nat(),
      where: fc.nat(7),
      interruptAfter: fc.integer({ min: -6, max: 6 })
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constantFrom("pin" as const, "unpin" as const, "busy" as const, "release" as const),
      i: fc.nat()
    })
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("evictAll" as const), tt: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("swapout" as const) }) }
)

interface Model {
  readonly bos: Array<BufferObject.Bo>
  readonly expected: Map<BufferObject.Bo, number>
  readonly touched: Set<BufferObject.Bo>
}

const FULL_EVERY = 10

const MAX_LIVE = 24

const zeros = (bytes: number) => Access.checksumOf(new Uint8Array(bytes))

const pick = (m: Model, i: number) => m.bos[i % Math.max(1, m.bos.length)]

/** A validate, interrupted after `after` yields when `after >= 0`. */
const validateMaybeInterrupted = (b: BufferObject.Bo, where: number, after: number) =>
  Effect.gen(function* () {
    const run = Reserve.withReserved(b, (h) => Validate.validate(h, b, PLACEMENTS[where] ?? []))
    const f = yield* Effect.forkChild(run, { startImmediately: true })
    if (after >= 0) {
      for (let k = 0; k < after; k++) yield* Effect.yieldNow
      yield* Fiber.interrupt(f)
    }
    return yield* Fiber.await(f)
  })

const step = (dev: Device.Device, m: Model, op: Op) =>
  Effect.gen(function* () {
    if (op.k === "create") {
      if (m.bos.length >= MAX_LIVE) return
      const size = op.pages * PAGE_SIZE
      const r = yield* Effect.exit(Lifecycle.create(dev, { size, priority: op.prio }, PLACEMENTS[op.where] ?? []))
      if (r._tag === "Success") {
        m.bos.push(r.value)
        m.expected.set(r.value, zeros(size))
        m.touched.add(r.value)
      }
      return
    }
    if (op.k === "evictAll") return void (yield* Effect.exit(Eviction.evictAll(dev, op.tt ? MemType.TT : MemType.VRAM)))
    if (op.k === "swapout") return void (yield* Eviction.swapout(dev))
    const b = pick(m, op.i)
    if (b === undefined) return
    switch (op.k) {
      case "write": {
        if (b.resource === undefined) return
        const data = pattern(b.size, op.seed)
        yield* Reserve.withReserved(b, (h) => Access.write(h, b, data))
        m.expected.set(b, Access.checksumOf(data))
        m.touched.add(b)
        return
      }
      case "validate": {
        const exit = yield* validateMaybeInterrupted(b, op.where, op.interruptAfter)
        if (exit._tag === "Failure" && exit.cause.reasons.some((r) => r._tag === "Interrupt")) totals.interrupted++
        if (exit._tag === "Success" && (PLACEMENTS[op.where] ?? []).length === 0) m.expected.set(b, zeros(b.size))
        return
      }
      case "pin":
        return yield* Reserve.withReserved(b, (h) => (b.pinCount < 2 ? Pin.pin(h, b) : Effect.void))
      case "unpin":
        return void (yield* Reserve.withReserved(b, (h) => Pin.unpin(h, b)))
      case "busy": {
        const f = Fence.make()
        yield* Reserve.withReserved(b, (h) => Reserve.addFence(h, f, "read"))
        setTimeout(() => f.signal(), 1 + (op.i % 4))
        return
      }
      case "release":
        m.bos.splice(m.bos.indexOf(b), 1)
        m.expected.delete(b)
        return yield* Lifecycle.release(b)
    }
  })

/** Where each BO's contents live: a change means the step moved, swapped or purged it. */
const placeOf = (b: BufferObject.Bo) => `${b.resource?.memType}:${b.resource?.start}:${b.swapped}`

/**
 * Invariants after every step; checksums of every BO the step touched (moved, swapped, written)
 * after every step, and of every live BO every `FULL_EVERY` steps (catches a move that clobbered
 * a bystander) and at the end.
 */
const check = (dev: Device.Device, m: Model, where: string, before: Map<BufferObject.Bo, string>, full: boolean) =>
  Effect.gen(function* () {
    assert.deepStrictEqual(Debug.violations(dev), [], where)
    const bos = full ? m.bos : m.bos.filter((b) => before.get(b) !== placeOf(b) || m.touched.has(b))
    m.touched.clear()
    const sums = yield* Debug.checksums(dev, bos)
    for (const [i, b] of bos.entries())
      assert.strictEqual(sums[i], m.expected.get(b), `${where}: contents of ${b.name}`)
  })

const runSequence = (ops: ReadonlyArray<Op>) =>
  Effect.scoped(
    Effect.gen(function* () {
      // VRAM -> SYSTEM moves bounce through TT (a multihop driver hook, as in the KUnit helpers).
      const dev = yield* makeDevice({
        vram: 512 * KiB,
        tt: 512 * KiB,
        pageLimit: 96,
        funcs: {
          move: (bo, to) =>
            bo.resource?.memType === MemType.VRAM && to.memType === MemType.SYSTEM
              ? { _tag: "Hop", place: place(MemType.TT) }
              : { _tag: "Copy" }
        }
      })
      const m: Model = { bos: [], expected: new Map(), touched: new Set() }
      for (const [n, op] of ops.entries()) {
        const before = new Map(m.bos.map((b) => [b, placeOf(b)]))
        yield* step(dev, m, op)
        yield* check(dev, m, `step ${n} ${JSON.stringify(op)}`, before, n % FULL_EVERY === 0 || n === ops.length - 1)
      }
      for (const b of [...m.bos]) yield* Lifecycle.release(b)
      yield* Device.drain(dev)
      yield* Lifecycle.flushDelayed(dev)
      yield* Device.drain(dev)
      assert.deepStrictEqual(Debug.violations(dev), [])
      assert.deepStrictEqual(Debug.leaks(dev), { systemBuffers: 0, ghosts: 0, bos: 0 })
      for (const man of dev.managers) assert.strictEqual(man?.usage ?? 0, 0, man?.name)
      assert.strictEqual(dev.ttPages, 0)
      return dev.stats
    })
  )

const RUNS = 8
const OPS = 1250

const totals = { evictions: 0, swapouts: 0, swapins: 0, purges: 0, moves: 0, interrupted: 0 }

describe("nothing lost", () => {
  it.live(
    `${RUNS} × ${OPS} random operations keep every byte and every counter`,
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(opArb, { minLength: OPS, maxLength: OPS }), async (ops) => {
            const s = await Effect.runPromise(runSequence(ops))
            for (const k of ["evictions", "swapouts", "swapins", "purges", "moves"] as const) totals[k] += s[k]
          }),
          { numRuns: RUNS, seed: 5, endOnFailure: true }
        )
      ).pipe(
        Effect.andThen(
          Effect.sync(() => {
            // The run must actually exercise the machinery it claims to test.
            for (const [k, v] of Object.entries(totals)) assert.isAbove(v, 0, k)
            console.log(`nothing lost: ${JSON.stringify(totals)}`)
          })
        )
      ),
    { timeout: 600_000 }
  )
})
