import { BindQueue, VmBind, VmBo } from "@drmkit/gpuva"
import { type DmaResv, Exec } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import fc from "fast-check"
import { check, cpuVm, GiB, KiB, MiB, object, scattered, tree } from "./helpers.ts"

type Cmd =
  | {
      readonly kind: "map"
      readonly unit: 0 | 1
      readonly at: number
      readonly len: number
      readonly obj: number
      readonly off: number
    }
  | { readonly kind: "unmap"; readonly unit: 0 | 1; readonly at: number; readonly len: number }
  | { readonly kind: "unmapAll"; readonly obj: number }
  | { readonly kind: "prefetch"; readonly at: number; readonly len: number }

const unitOf = (u: 0 | 1) => (u === 0 ? 4n * KiB : 2n * MiB)
const Cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    kind: fc.constant("map" as const),
    unit: fc.constantFrom(0 as const, 1 as const),
    at: fc.integer({ min: 0, max: 31 }),
    len: fc.integer({ min: 1, max: 6 }),
    obj: fc.integer({ min: -1, max: 3 }),
    off: fc.integer({ min: 0, max: 2 })
  }),
  fc.record({
    kind: fc.constant("unmap" as const),
    unit: fc.constantFrom(0 as const, 1 as const),
    at: fc.integer({ min: 0, max: 31 }),
    len: fc.integer({ min: 1, max: 8 })
  }),
  fc.record({ kind: fc.constant("unmapAll" as const), obj: fc.integer({ min: 0, max: 3 }) }),
  fc.record({
    kind: fc.constant("prefetch" as const),
    at: fc.integer({ min: 0, max: 31 }),
    len: fc.integer({ min: 1, max: 8 })
  })
)
const Batch = fc.record({
  cmds: fc.array(Cmd, { minLength: 1, maxLength: 4 }),
  failAfter: fc.option(fc.nat(12), { freq: 4 }),
  /** move_notify of one object after the batch (BindQueue.invalidate): its VAs must fault until rebound. */
  invalidate: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 2 })
})

describe("random bind arrays and invalidations (model: the VA tree; checked: page tables, vm_bos, unwinding)", () => {
  it("every accepted array leaves page tables == VA tree; every NoMemory leaves everything as it was", () =>
    fc.assert(
      fc.asyncProperty(fc.array(Batch, { minLength: 1, maxLength: 8 }), (batches) =>
        Effect.runPromise(
          Effect.scoped(
            Effect.gen(function* () {
              const s = cpuVm("prop")
              const q = yield* BindQueue.make(s.vm)
              const objs = [
                object("p", 16n * MiB, s.vm.resv),
                object("e", 16n * MiB),
                scattered("s", 16n * MiB),
                object("f", 16n * MiB)
              ]
              const toOp = (c: Cmd): VmBind.BindOp => {
                const base = GiB
                if (c.kind === "unmapAll") return VmBind.unmapAll(objs[c.obj]!)
                if (c.kind === "prefetch")
                  return VmBind.prefetch(base + BigInt(c.at) * 2n * MiB, BigInt(c.len) * 2n * MiB)
                const u = unitOf(c.unit)
                const addr = base + BigInt(c.at) * u * 3n
                const range = BigInt(c.len) * u
                if (c.kind === "unmap") return VmBind.unmap(addr, range)
                if (c.obj < 0) return VmBind.mapNull(addr, range)
                return VmBind.map(addr, range, objs[c.obj]!, BigInt(c.off) * u)
              }
              const snapshot = () => ({
                tree: tree(s.vm),
                mem: s.cpu.memory.slice(0, 1024 * 64).join(),
                bos: objs.map((o) => VmBo.peek(s.vm, o)?.refs),
                ext: s.vm.extobjs.size,
                fences: objs.map((o) => o.resv.fenceCount)
              })
              for (const b of batches) {
                const ops = b.cmds.map(toOp)
                const before = snapshot()
                s.allocator.failAfter = b.failAfter ?? undefined
                const exit = yield* Effect.exit(BindQueue.submit(q, ops))
                s.allocator.failAfter = undefined
                if (Exit.isFailure(exit)) {
                  const e = yield* Effect.flip(exit)
                  assert.include(["NoMemory", "Invalid"], e._tag)
                  assert.deepStrictEqual(snapshot(), before)
                  continue
                }
                yield* BindQueue.flush(q)
                assert.deepStrictEqual(yield* check(s.vm, 32), [])
                assert.deepStrictEqual(s.vm.space.check(), [])
                for (const o of objs) {
                  const n = s.vm.space.vasOf(o).length
                  assert.strictEqual(VmBo.peek(s.vm, o)?.refs ?? 0, n)
                  assert.strictEqual(s.vm.extobjs.has(VmBo.peek(s.vm, o) as VmBo.VmBo), n > 0 && o.resv !== s.vm.resv)
                }
                if (b.invalidate !== null) {
                  const o = objs[b.invalidate]!
                  yield* Effect.scoped(
                    Effect.gen(function* () {
                      const exec = yield* Exec.make<DmaResv.DmaResv>()
                      yield* Exec.untilAllLocked(exec, Exec.prepare(exec, o.resv, 1))
                      yield* BindQueue.invalidate(q, Exec.held(exec, o.resv), o)
                    })
                  )
                  yield* BindQueue.flush(q)
                  assert.deepStrictEqual(yield* check(s.vm, 32), [], "zapped VAs fault, others intact")
                }
              }
            })
          )
        )
      ),
      { numRuns: 60, seed: 7 }
    ))
})
