import { GpuVm, VmBind } from "@drmkit/gpuva"
import { Access, type BufferObject, Debug, Device, Eviction, Lifecycle, Placement } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Check from "../src/Check.ts"
import * as Driver from "../src/Driver.ts"
import type { XeBo } from "../src/XeBo.ts"

const { MiB } = Driver
const GiB = 1n << 30n
const { MemType } = Placement

const fill = (size: number, seed: number) => new Uint8Array(new Uint32Array(size / 4).fill(seed).buffer)

/** A driver with one per-VM and one external 2 MiB BO, both bound. */
const setup = (d: Driver.XeLite) =>
  Effect.gen(function* () {
    const expected = new Map<BufferObject.Bo, number>()
    const objs: Array<XeBo> = []
    for (const [name, seed, vmPrivate] of [
      ["priv", 11, true],
      ["ext", 12, false]
    ] as const) {
      const data = fill(2 * MiB, seed)
      const o = yield* Driver.createBo(d, name, data, { vmPrivate })
      expected.set(o.bo, Access.checksumOf(data))
      objs.push(o)
    }
    const [p, e] = objs as [XeBo, XeBo]
    yield* Driver.bind(d, [VmBind.map(GiB, 2n << 20n, p), VmBind.map(2n * GiB, 1n << 20n, e, 1n << 20n)])
    return { expected, objs }
  })

/** The exec job: under the exec's locks every mapping is valid, translates to VRAM, contents intact. */
const job =
  (d: Driver.XeLite, objs: ReadonlyArray<XeBo>, expected: Map<BufferObject.Bo, number>) => (locks: GpuVm.Locks) =>
    Effect.gen(function* () {
      const t = yield* Check.translations(d, 8)
      assert.deepStrictEqual(t.mismatches, [])
      assert.strictEqual(t.zapped, 0)
      assert.strictEqual(t.vram, (2 * MiB + MiB) / 4096)
      for (const o of objs) {
        const sum = yield* Access.checksum(GpuVm.heldOfObject(d.vm, locks, o), o.bo)
        assert.strictEqual(sum, expected.get(o.bo), o.name)
      }
    })

describe("xe-lite exec", () => {
  it.live("exec is ONE transaction: an evictor racing between the rebind and the job waits for the exec's locks", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const d = yield* Driver.make()
        const { expected, objs } = yield* setup(d)
        assert.strictEqual(yield* Eviction.evictAll(d.ttm, MemType.VRAM), 2)
        assert.strictEqual(d.vm.evicted.size, 2)
        const zapped = d.stats.zappedVas
        let evictor: Fiber.Fiber<number, unknown> | undefined
        let evictionsBeforeJob = -1
        yield* Driver.exec(d, job(d, objs, expected), {
          beforeJob: () =>
            Effect.gen(function* () {
              const before = d.stats.boundEvictions
              evictor = yield* Effect.forkChild(Eviction.evictAll(d.ttm, MemType.VRAM))
              yield* Effect.sleep("20 millis")
              evictionsBeforeJob = d.stats.boundEvictions - before
            })
        })
        assert.strictEqual(evictionsBeforeJob, 0, "the exec's BOs stay locked from validate to job")
        assert.strictEqual(d.stats.execs, 1)
        assert.strictEqual(d.stats.vmBoValidates, 2, "both vm_bos validated once")
        assert.strictEqual(d.stats.rebindJobs, 1, "one bind job rebinds everything")
        assert.strictEqual(d.stats.rebindVas, zapped)
        // after the exec the evictor gets the locks and evicts both again (and zaps them)
        assert.isDefined(evictor)
        assert.strictEqual(yield* Fiber.join(evictor as Fiber.Fiber<number, unknown>), 2)
        assert.strictEqual(d.vm.evicted.size, 2)
        yield* Driver.awaitZaps(d)
        const t = yield* Check.translations(d)
        assert.deepStrictEqual(t.mismatches, [])
        assert.strictEqual(t.zapped, (2 * MiB + MiB) / 4096)
      })
    )
  )

  it.effect(
    "a client creating and releasing BOs concurrently with execs: every exec sees valid mappings and intact contents",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const d = yield* Driver.make()
          const { expected, objs } = yield* setup(d)
          let created = 0
          const client = Effect.gen(function* () {
            for (let i = 0; i < 24; i++) {
              // 5 MiB wanted in 8 MiB of VRAM holding 4 MiB of bound BOs: evicts one whenever unlocked
              const bo = yield* Lifecycle.create(d.ttm, { size: 5 * MiB, name: `client${i}` }, [
                Placement.place(MemType.VRAM)
              ]).pipe(Effect.option)
              if (bo._tag === "Some") {
                created++
                yield* Effect.yieldNow
                yield* Lifecycle.release(bo.value)
              }
              yield* Effect.yieldNow
            }
          })
          const fiber = yield* Effect.forkChild(client)
          for (let i = 0; i < 12; i++) {
            yield* Driver.exec(d, job(d, objs, expected))
            yield* Effect.yieldNow
          }
          yield* Fiber.join(fiber)
          yield* Driver.exec(d, job(d, objs, expected))
          assert.isAbove(created, 0)
          assert.isAbove(d.stats.boundEvictions, 0, "the client did evict bound BOs")
          assert.strictEqual(d.stats.execs, 13)
          assert.strictEqual(d.stats.rebindVas, d.stats.zappedVas)
          assert.strictEqual(d.stats.vmBoValidates, d.stats.vmBosEvicted)
          yield* Driver.bind(d, [VmBind.unmapAll(objs[0] as XeBo), VmBind.unmapAll(objs[1] as XeBo)])
          assert.deepStrictEqual(GpuVm.leftovers(d.vm), [])
          for (const o of objs) yield* Lifecycle.release(o.bo)
          yield* Device.drain(d.ttm)
          yield* Lifecycle.flushDelayed(d.ttm)
          assert.deepStrictEqual(Debug.leaks(d.ttm), { systemBuffers: 0, ghosts: 0, bos: 0 })
          assert.deepStrictEqual(Debug.violations(d.ttm), [])
        })
      )
  )
})
