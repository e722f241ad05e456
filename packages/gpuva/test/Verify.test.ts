import { BindQueue, GpuVa, VaSpace, Verify, VmBind } from "@drmkit/gpuva"
import { DmaResv } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bindAndCheck, cpuVm, GiB, MiB, object } from "./helpers.ts"

/** Zaps `[va, va + size)` directly through the VM's page tables (what a driver's zap job writes). */
const zapPtes = (vm: ReturnType<typeof cpuVm>["vm"], va: bigint, size: bigint) =>
  Effect.gen(function* () {
    const pt = vm.pageTables!
    const plan = pt.plan([{ _tag: "Zap", va, size }])
    if (!("descriptors" in plan)) return yield* Effect.die(plan)
    const p = yield* pt.executor.prepare(plan)
    yield* p.run
    pt.retire(plan)
  }).pipe(Effect.orDie)

describe("Verify", () => {
  it("sampleAddrs(space, 0) adds no hole samples (was a BigInt division by zero)", () => {
    const space = VaSpace.makeUnsafe({ start: 0n, range: 1n << 40n, pageSize: 4096n })
    assert.deepStrictEqual(Verify.sampleAddrs(space, 0), [0n, (1n << 40n) - 4096n])
    assert.strictEqual(Verify.sampleAddrs(space, 4).length, 2 + 4)
    assert.throws(() => Verify.sampleAddrs(space, -1), RangeError)
    assert.throws(() => Verify.sampleAddrs(space, 1.5), RangeError)
  })

  it.effect("an Invalidated, zapped VA is expected to fault; one still mapped is a mismatch", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      const a = object("a", 2n * MiB)
      const b = object("b", 2n * MiB)
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, a), VmBind.map(2n * GiB, 2n * MiB, b)])
      const va = vm.space.find(GiB, 2n * MiB)!
      va.flags |= GpuVa.Flags.Invalidated
      const fault = { invalidated: "fault" } as const
      const stale = yield* Verify.verify(vm, Verify.sampleAddrs(vm.space, 0), fault)
      assert.strictEqual(stale.mismatches.length, 20, "invalidated but not zapped: the old PTEs are still there")
      assert.match(stale.mismatches[0]!, /want Fault/)
      yield* zapPtes(vm, GiB, 2n * MiB)
      assert.deepStrictEqual((yield* Verify.verify(vm, Verify.sampleAddrs(vm.space), fault)).mismatches, [])
      // the default reading is "fault"
      assert.deepStrictEqual((yield* Verify.verify(vm, Verify.sampleAddrs(vm.space))).mismatches, [])
      // the "is everything rebound?" reading reports the zapped pages
      const current = yield* Verify.verify(vm, Verify.sampleAddrs(vm.space, 0), { invalidated: "current" })
      assert.strictEqual(current.mismatches.length, 20)
      assert.strictEqual(Verify.expected(vm.space, GiB)._tag, "Fault")
      assert.strictEqual(Verify.expected(vm.space, GiB, "current")._tag, "Pa")
    })
  )

  it.effect("does not read the frames of an invalidated VA's object; an unmappable valid one is a mismatch", () =>
    Effect.gen(function* () {
      const { vm } = cpuVm()
      const q = yield* BindQueue.make(vm)
      let mappable = true
      const base = object("base", 2n * MiB)
      const obj = {
        name: "moving",
        size: 2n * MiB,
        resv: DmaResv.make("moving"),
        get frames(): VmBind.Frames {
          if (!mappable) throw new Error("moving is in SYSTEM (not GPU-mappable)")
          return base.frames
        }
      } satisfies VmBind.BindObject
      yield* bindAndCheck(q, [VmBind.map(GiB, 2n * MiB, obj)])
      mappable = false
      const va = vm.space.find(GiB, 2n * MiB)!
      va.flags |= GpuVa.Flags.Invalidated
      yield* zapPtes(vm, GiB, 2n * MiB)
      const fault = { invalidated: "fault" } as const
      assert.deepStrictEqual((yield* Verify.verify(vm, Verify.sampleAddrs(vm.space), fault)).mismatches, [])
      va.flags &= ~GpuVa.Flags.Invalidated
      const r = yield* Verify.verify(vm, [GiB], fault)
      assert.deepStrictEqual(r.mismatches, [
        "0x40000000: moving is mapped but has no frames (moving is in SYSTEM (not GPU-mappable)), got fault"
      ])
    })
  )
})
