import { Invalid } from "@drmkit/core"
import { GpuVa, GpuVm, VaSpace, VmBo } from "@drmkit/gpuva"
import { DmaFence, DmaResv, Exec, type Held, WwMutex } from "@drmkit/resv-locking"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { GiB, MiB, object } from "./helpers.ts"

const space = () => VaSpace.makeUnsafe({ name: "vm", start: 0n, range: 1n << 40n, pageSize: 4096n })

/** Runs `f` with the object's resv locked (no ctx), unlocking afterwards. */
const withResv = <A>(resv: DmaResv.DmaResv, f: (held: Held.Held<DmaResv.DmaResv>) => A) =>
  Effect.gen(function* () {
    const held = yield* DmaResv.lock(resv)
    try {
      return f(held)
    } finally {
      yield* DmaResv.unlock(held)
    }
  })

const isDefect = <A, E>(exit: Exit.Exit<A, E>, text: string): boolean =>
  Exit.isFailure(exit) && exit.cause.reasons.some((r) => r._tag === "Die" && String(r.defect).includes(text))

describe("vm_bo", () => {
  it.effect("is unique per (VM, object) and refcounted: obtain / find / put", () =>
    Effect.gen(function* () {
      const vm = GpuVm.make({ space: space() })
      const vm2 = GpuVm.make({ space: space() })
      const a = object("a", 2n * MiB)
      yield* withResv(a.resv, (h) => {
        const b1 = VmBo.obtain(vm, a, h) as VmBo.VmBo
        const b2 = VmBo.obtain(vm, a, h) as VmBo.VmBo
        const other = VmBo.obtain(vm2, a, h) as VmBo.VmBo
        assert.strictEqual(b1, b2)
        assert.notStrictEqual(b1, other)
        assert.strictEqual(VmBo.find(vm, a, h), b1)
        assert.strictEqual(b1.refs, 3)
        assert.deepStrictEqual(VmBo.ofObject(a), [b1, other])
        assert.isFalse(VmBo.put(b1, h))
        assert.isFalse(VmBo.put(b1, h))
        assert.isTrue(VmBo.put(b1, h))
        assert.isTrue(b1.destroyed)
        assert.isUndefined(VmBo.find(vm, a, h))
        assert.deepStrictEqual(VmBo.ofObject(a), [other])
        assert.isTrue(VmBo.put(other, h))
      })
    })
  )

  it.effect("obtainPrealloc returns the existing vm_bo (dropping the pre-allocated one) or links the new one", () =>
    Effect.gen(function* () {
      const vm = GpuVm.make({ space: space() })
      const a = object("a", 2n * MiB)
      yield* withResv(a.resv, (h) => {
        const pre1 = VmBo.create(vm, a) as VmBo.VmBo
        assert.isFalse(pre1.inObjList)
        const got1 = VmBo.obtainPrealloc(pre1, h)
        assert.strictEqual(got1, pre1)
        const pre2 = VmBo.create(vm, a) as VmBo.VmBo
        const got2 = VmBo.obtainPrealloc(pre2, h)
        assert.strictEqual(got2, pre1)
        assert.isTrue(pre2.destroyed)
        assert.strictEqual(pre1.refs, 2)
        assert.throws(() => VmBo.obtainPrealloc(pre1, h), VmBo.VmBoMisuse, /already in use/)
        assert.throws(() => VmBo.get(pre2), VmBo.VmBoMisuse, /after its last put/)
        assert.throws(() => VmBo.put(pre2, h), VmBo.VmBoMisuse, /after its last reference/)
      })
    })
  )

  it.effect("the gpuva list needs the object's lock: wrong or unheld witnesses are defects", () =>
    Effect.gen(function* () {
      const vm = GpuVm.make({ space: space() })
      const a = object("a", 2n * MiB)
      const b = object("b", 2n * MiB)
      const wrong = yield* Effect.exit(withResv(b.resv, (hb) => VmBo.obtain(vm, a, hb)))
      assert.isTrue(isDefect(wrong, "wrong lock"))
      const hA = yield* DmaResv.lock(a.resv)
      yield* DmaResv.unlock(hA)
      const stale = yield* Effect.exit(Effect.sync(() => VmBo.obtain(vm, a, hA)))
      assert.isTrue(isDefect(stale, "not held"))
      // held by another task
      const hOther = yield* DmaResv.lock(a.resv)
      const fromOther = yield* Fiber.join(
        yield* Effect.forkChild(Effect.exit(Effect.sync(() => VmBo.obtain(vm, a, hOther))))
      )
      assert.isTrue(isDefect(fromOther, "not held"))
      const bo = VmBo.obtain(vm, a, hOther) as VmBo.VmBo
      yield* DmaResv.unlock(hOther)
      assert.isTrue(isDefect(yield* Effect.exit(Effect.sync(() => VmBo.put(bo))), "without its gpuva lock"))
    })
  )

  it("the witness is a type: an unlocked resv does not type-check where the gpuva lock is needed", () => {
    const vm = GpuVm.make({ space: space() })
    const a = object("a", 2n * MiB)
    const misuse = () => {
      // @ts-expect-error a DmaResv is not proof that it is locked
      VmBo.find(vm, a, a.resv)
      // @ts-expect-error neither is the object
      VmBo.link(GpuVa.make({ addr: 0n, range: MiB, obj: a, offset: 0n }), VmBo.create(vm, a) as VmBo.VmBo, a)
    }
    assert.throws(misuse, VmBo.LockNotHeld, /wrong lock/, "and at run time the assert catches it")
  })

  it.effect("a driver gpuva lock replaces the resv (drm_gem_gpuva_set_lock)", () =>
    Effect.gen(function* () {
      const vm = GpuVm.make({ space: space() })
      const a = object("a", 2n * MiB)
      const m = WwMutex.make(WwMutex.WwClass.waitDie("gpuva"), "a.gpuva")
      VmBo.setGpuvaLock(a, m)
      const hm = yield* WwMutex.lockNoCtx(m)
      const b = VmBo.obtain(vm, a, hm) as VmBo.VmBo
      assert.strictEqual(b.refs, 1)
      assert.isTrue(VmBo.put(b, hm))
      yield* WwMutex.release(hm)
      assert.isTrue(isDefect(yield* Effect.exit(withResv(a.resv, (h) => VmBo.obtain(vm, a, h))), "wrong lock"))
    })
  )

  it.effect("linked VAs hold vm_bo references; NULL VAs are not linked", () =>
    Effect.gen(function* () {
      const vm = GpuVm.make({ space: space() })
      const a = object("a", 2n * MiB)
      yield* withResv(a.resv, (h) => {
        const b = VmBo.obtain(vm, a, h) as VmBo.VmBo
        const v1 = GpuVa.make({ addr: GiB, range: MiB, obj: a, offset: 0n })
        const v2 = GpuVa.make({ addr: 2n * GiB, range: MiB, obj: a, offset: MiB })
        const nul = GpuVa.make({ addr: 3n * GiB, range: MiB, obj: null, offset: 0n })
        VmBo.link(v1, b, h)
        VmBo.link(v2, b, h)
        VmBo.link(nul, b, h)
        assert.strictEqual(b.refs, 3)
        assert.deepStrictEqual([...b.vas], [v1, v2])
        assert.strictEqual(VmBo.ofVa(v2), b)
        assert.isFalse(VmBo.put(b, h))
        VmBo.unlink(v1, h)
        VmBo.unlink(v2, h)
        assert.isTrue(b.destroyed, "the last unlink dropped the last reference")
      })
    })
  )

  it.effect("extobj list: only objects with their own resv, once", () =>
    Effect.gen(function* () {
      const vm = GpuVm.make({ space: space() })
      const priv = object("priv", 2n * MiB, vm.resv)
      const ext = object("ext", 2n * MiB)
      const bp = yield* withResv(vm.resv, (h) => VmBo.obtain(vm, priv, h) as VmBo.VmBo)
      const be = yield* withResv(ext.resv, (h) => VmBo.obtain(vm, ext, h) as VmBo.VmBo)
      VmBo.extobjAdd(bp)
      VmBo.extobjAdd(be)
      VmBo.extobjAdd(be)
      assert.deepStrictEqual([...vm.extobjs], [be])
      assert.isFalse(bp.isExtobj)
      yield* withResv(ext.resv, (h) => VmBo.put(be, h))
      assert.strictEqual(vm.extobjs.size, 0, "destroying the vm_bo takes it off the list")
    })
  )
})

describe("evict list and validate", () => {
  it.effect(
    "evict under the object's resv; validate calls vmBoValidate per evicted vm_bo, stops at the first failure",
    () =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        let failOn = "b"
        const vm = GpuVm.make<Invalid>({
          space: space(),
          ops: {
            vmBoValidate: (b, held) =>
              Effect.suspend(() => {
                assert.strictEqual(held.target, b.obj.resv)
                seen.push(b.obj.name)
                return b.obj.name === failOn
                  ? Effect.fail(new Invalid({ what: b.obj.name, reason: "no space" }))
                  : Effect.void
              })
          }
        })
        const objs = ["a", "b", "c"].map((n) => object(n, 2n * MiB))
        const bos: Array<VmBo.VmBo> = []
        for (const o of objs) bos.push(yield* withResv(o.resv, (h) => VmBo.obtain(vm, o, h) as VmBo.VmBo))
        for (const o of objs) yield* withResv(o.resv, (h) => VmBo.evictObject(o, true, h))
        assert.deepStrictEqual(
          [...vm.evicted].map((b) => b.obj.name),
          ["a", "b", "c"]
        )
        const wrong = yield* Effect.exit(withResv(objs[1]!.resv, (h) => VmBo.evict(bos[0]!, false, h)))
        assert.isTrue(isDefect(wrong, "not a's resv"))
        const run = Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* GpuVm.execLock(vm, 0, (e) =>
              Exec.prepareArray(
                e,
                objs.map((o) => o.resv),
                0
              )
            )
            return yield* Effect.exit(GpuVm.validate(vm, exec))
          })
        )
        assert.isTrue(Exit.isFailure(yield* run))
        assert.deepStrictEqual(seen, ["a", "b"])
        assert.deepStrictEqual(
          [...vm.evicted].map((b) => b.obj.name),
          ["b", "c"]
        )
        failOn = ""
        assert.isTrue(Exit.isSuccess(yield* run))
        assert.strictEqual(vm.evicted.size, 0)
        assert.isFalse(bos[2]!.evicted)
      })
  )

  it.effect("validating a vm_bo whose resv the transaction did not lock is a defect", () =>
    Effect.gen(function* () {
      const vm = GpuVm.make({ space: space() })
      const a = object("a", 2n * MiB)
      const b = yield* withResv(a.resv, (h) => VmBo.obtain(vm, a, h) as VmBo.VmBo)
      yield* withResv(a.resv, (h) => VmBo.evict(b, true, h))
      const exit = yield* Effect.exit(
        Effect.scoped(Effect.flatMap(GpuVm.execLock(vm, 0), (exec) => GpuVm.validate(vm, exec)))
      )
      assert.isTrue(
        isDefect(exit, "not locked by this task"),
        "a is not on the extobj list, so execLock did not lock it"
      )
    })
  )
})

describe("exec locking and fences", () => {
  it.effect(
    "execLock + prepareRange: the range's objects join the same transaction, an extobj in range only once",
    () =>
      Effect.gen(function* () {
        const vm = GpuVm.make({ space: space() })
        const [e1, inRange, outside] = [object("e1", 2n * MiB), object("r", 2n * MiB), object("o", 2n * MiB)]
        const b1 = yield* withResv(e1.resv, (h) => VmBo.obtain(vm, e1, h) as VmBo.VmBo)
        VmBo.extobjAdd(b1)
        const at = (addr: bigint, obj: GpuVa.GemObject | null) =>
          Effect.fromResult(vm.space.insert(GpuVa.make({ addr, range: MiB, obj, offset: 0n })))
        yield* at(GiB, e1)
        yield* at(GiB + MiB, inRange)
        yield* at(GiB + 2n * MiB, null)
        yield* at(4n * GiB, outside)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* GpuVm.execLock(vm, 1, (e) => GpuVm.prepareRange(e, vm, GiB, 3n * MiB, 1))
            assert.deepStrictEqual(Exec.lockedObjects(exec), [vm.resv, e1.resv, inRange.resv])
            assert.isFalse(DmaResv.isLocked(outside.resv))
            assert.strictEqual(GpuVm.heldOfObject(vm, exec, inRange).target, inRange.resv)
            const fence = DmaFence.make(DmaFence.contextAlloc("job"))
            yield* GpuVm.resvAddFence(vm, exec, fence, "bookkeep", "bookkeep")
            assert.include(yield* DmaResv.getFences(inRange.resv, "bookkeep"), fence, "range objects are fenced too")
          })
        )
        for (const o of [e1, inRange]) assert.isFalse(DmaResv.isLocked(o.resv))
      })
  )

  it.effect(
    "execLock locks the VM resv, every extobj and the range's objects in one transaction; resvAddFence uses private / extobj usages",
    () =>
      Effect.gen(function* () {
        const vm = GpuVm.make({ space: space() })
        const ext = [object("e1", 2n * MiB), object("e2", 2n * MiB)]
        const priv = object("p", 2n * MiB, vm.resv)
        for (const o of [...ext, priv]) {
          const b = yield* withResv(o.resv, (h) => VmBo.obtain(vm, o, h) as VmBo.VmBo)
          VmBo.extobjAdd(b)
        }
        const fence = DmaFence.make(DmaFence.contextAlloc("job"))
        yield* Effect.scoped(
          Effect.gen(function* () {
            const exec = yield* GpuVm.execLock(vm, 1)
            assert.deepStrictEqual(Exec.lockedObjects(exec), [vm.resv, ext[0]!.resv, ext[1]!.resv])
            yield* GpuVm.resvAddFence(vm, exec, fence, "bookkeep", "write")
          })
        )
        assert.isFalse(DmaResv.isLocked(vm.resv))
        assert.notInclude(yield* DmaResv.getFences(vm.resv, "read"), fence)
        assert.include(yield* DmaResv.getFences(vm.resv, "bookkeep"), fence)
        for (const o of ext) assert.include(yield* DmaResv.getFences(o.resv, "write"), fence)
      })
  )
})
