/**
 * Device lifecycle (probe/remove), adapter report, buffers and transfers, job fences, and error
 * paths: bad requests → Invalid with nothing submitted, validation errors → GpuError, device loss →
 * DeviceLost (never a hang).
 */
import { CurrentTraceSink, collectingSink } from "@drmkit/core"
import { GpuBuffer, GpuDevice, GpuPageTables, Migrate } from "@drmkit/gpu"
import type { DmaFence } from "@drmkit/resv-locking"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { DeviceLayer, gpu, rng } from "./helpers.ts"

const MiB = 1024 * 1024

describe("device lifecycle", () => {
  it.live("acquire/release in a loop: each device is destroyed when its scope closes", () =>
    Effect.gen(function* () {
      const devices: Array<GPUDevice> = []
      for (let i = 0; i < 4; i++) {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const g = yield* gpu
            devices.push(g.device)
            const b = yield* GpuBuffer.make({ size: 4096, label: `loop-${i}` })
            yield* Migrate.fill(g, b, 0, 4096, i + 1).pipe(Effect.flatMap(GpuDevice.awaitFence))
            const words = yield* GpuBuffer.downloadU32(g, b)
            assert.strictEqual(words[1023], i + 1)
          }).pipe(Effect.provide(Layer.fresh(GpuDevice.layer({ debug: true }))))
        )
      }
      for (const d of devices) {
        const info = yield* Effect.promise(() => d.lost)
        assert.strictEqual(info.reason, "destroyed")
      }
      assert.strictEqual(new Set(devices).size, 4)
    })
  )

  it("backend selection: option beats env var beats auto", () => {
    const saved = process.env.DRMKIT_GPU_BACKEND
    process.env.DRMKIT_GPU_BACKEND = "opengl"
    assert.strictEqual(GpuDevice.resolveBackend(), "opengl")
    assert.strictEqual(GpuDevice.resolveBackend("vulkan"), "vulkan")
    delete process.env.DRMKIT_GPU_BACKEND
    assert.strictEqual(GpuDevice.resolveBackend(), "auto")
    if (saved !== undefined) process.env.DRMKIT_GPU_BACKEND = saved
  })

  it.live("an unavailable backend is a typed GpuUnavailable", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(Effect.scoped(GpuDevice.make({ backend: "metal" })))
      assert.strictEqual(e._tag, "GpuUnavailable")
    })
  )

  it.live("device loss: later jobs fail with DeviceLost, pending fences still signal", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const g = yield* GpuDevice.make({ debug: false })
        const b = yield* GpuBuffer.makeWith(g, { size: 1 << 20 })
        const fence = yield* Migrate.fill(g, b, 0, 1 << 20, 7)
        g.device.destroy()
        yield* Effect.promise(() => g.device.lost)
        yield* GpuDevice.awaitFence(fence).pipe(Effect.ignore, Effect.timeout("5 seconds"))
        assert.isTrue(fence.isSignaled)
        const e = yield* Effect.flip(Migrate.fill(g, b, 0, 4096, 1))
        assert.strictEqual(e._tag, "DeviceLost")
      })
    )
  )

  it.live("without error scopes, fence callbacks run in submission order", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const g = yield* GpuDevice.make({ debug: false })
        const b = yield* GpuBuffer.makeWith(g, { size: 4 * MiB })
        const order: Array<number> = []
        const fences: Array<DmaFence.DmaFence> = []
        for (let i = 0; i < 8; i++) {
          const f = yield* Migrate.fill(g, b, 0, (i % 2 === 0 ? 4 : 1) * MiB, i + 1)
          assert.isFalse(f.isSignaled)
          f.addCallback((x) => order.push(x.seqno))
          fences.push(f)
        }
        yield* GpuDevice.awaitFence(fences[7] as DmaFence.DmaFence)
        assert.deepStrictEqual(
          order,
          fences.map((f) => f.seqno)
        )
        const words = yield* GpuBuffer.downloadU32(g, b, 0, 16)
        assert.strictEqual(words[0], 8)
      })
    )
  )

  it.live("with the default (compatibility) limits every kernel still runs", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const g = yield* GpuDevice.make({ debug: true, adapterLimits: false })
        assert.isTrue(g.device.limits.maxComputeInvocationsPerWorkgroup >= 64)
        const src = yield* GpuBuffer.makeWith(g, { size: 8 * 4096 })
        const dst = yield* GpuBuffer.makeWith(g, { size: 8 * 4096 })
        yield* Migrate.fill(g, src, 4096, 4096, 9).pipe(Effect.flatMap(GpuDevice.awaitFence))
        yield* Migrate.gather(g, src, [1, 0], dst, 3, "kernel").pipe(Effect.flatMap(GpuDevice.awaitFence))
        const words = yield* GpuBuffer.downloadU32(g, dst)
        assert.strictEqual(words[3 * 1024], 9)
        assert.strictEqual(words[4 * 1024], 0)
        const pt = yield* GpuPageTables.make(g, 4)
        yield* GpuPageTables.invalidate(pt, 1, 0, 600, 5, 7).pipe(Effect.flatMap(GpuDevice.awaitFence))
        assert.strictEqual((yield* GpuPageTables.read(pt))[1024], (5 << 12) | 7)
      })
    )
  )

  it.live("an unknown backend in DRMKIT_GPU_BACKEND is GpuUnavailable, not a Dawn toggle", () =>
    Effect.gen(function* () {
      const saved = process.env.DRMKIT_GPU_BACKEND
      process.env.DRMKIT_GPU_BACKEND = "vulkann"
      const e = yield* Effect.flip(Effect.scoped(GpuDevice.make())).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            if (saved === undefined) delete process.env.DRMKIT_GPU_BACKEND
            else process.env.DRMKIT_GPU_BACKEND = saved
          })
        )
      )
      assert.strictEqual(e._tag, "GpuUnavailable")
      assert.match(e.message, /unknown backend/)
    })
  )

  it.live("debug mode: concurrent jobs each get their own error scopes", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const g = yield* GpuDevice.make({ debug: true })
        const a = yield* GpuBuffer.makeWith(g, { size: 4096 })
        const b = yield* GpuBuffer.makeWith(g, { size: 4096 })
        const good = (i: number) => g.submit(`good-${i}`, (enc) => enc.copyBufferToBuffer(a.buffer, 0, b.buffer, 0, 16))
        const bad = g.submit("bad", (enc) => enc.copyBufferToBuffer(a.buffer, 0, b.buffer, 0, 6))
        const exits = yield* Effect.all([good(0), bad, good(1), good(2)].map(Effect.exit), { concurrency: "unbounded" })
        assert.deepStrictEqual(
          exits.map((x) => x._tag),
          ["Success", "Failure", "Success", "Success"]
        )
      })
    )
  )

  it.live("debug mode: a throwing encoder leaves the error-scope stack balanced", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const g = yield* GpuDevice.make({ debug: true })
        const before = g.submitted()
        const exit = yield* Effect.exit(
          g.submit("throws", () => {
            throw new Error("encoder bug")
          })
        )
        assert.isTrue(exit._tag === "Failure")
        assert.strictEqual(g.submitted(), before)
        // an error outside any job must reach uncapturederror, not a leaked scope
        g.device.createBuffer({ size: 16, usage: GpuBuffer.Usage.MAP_READ | GpuBuffer.Usage.STORAGE })
        yield* Effect.promise(() => g.device.queue.onSubmittedWorkDone())
        yield* Effect.sleep("20 millis")
        assert.strictEqual((yield* Effect.flip(g.check))._tag, "GpuError")
      })
    )
  )

  it.live("a download interrupted while mapAsync is pending tears down without unhandled rejections", () =>
    Effect.gen(function* () {
      const seen: Array<unknown> = []
      const onRejection = (e: unknown) => seen.push(e)
      process.on("unhandledRejection", onRejection)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const g = yield* GpuDevice.make({ debug: true })
          const b = yield* GpuBuffer.makeWith(g, { size: 16 * MiB })
          for (const delay of [0, 1, 2]) {
            const f = yield* Effect.forkChild(GpuBuffer.download(g, b, 0, 16 * MiB, 4 * MiB))
            yield* Effect.sleep(`${delay} millis`)
            yield* Fiber.interrupt(f)
          }
        })
      )
      yield* Effect.sleep("20 millis")
      process.off("unhandledRejection", onRejection)
      assert.deepStrictEqual(seen, [])
    })
  )

  it.live("uncaptured errors surface as GpuError on the next operation (non-debug mode)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const g = yield* GpuDevice.make({ debug: false })
        g.device.createBuffer({ size: 16, usage: GpuBuffer.Usage.MAP_READ | GpuBuffer.Usage.STORAGE })
        yield* Effect.promise(() => g.device.queue.onSubmittedWorkDone())
        yield* Effect.sleep("20 millis")
        const e = yield* Effect.flip(g.check)
        assert.strictEqual(e._tag, "GpuError")
        yield* g.check
      })
    )
  )
})

layer(DeviceLayer)("device services", (it) => {
  it.effect("reports the adapter and the raised limits", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const a = g.adapter
      console.log(`adapter: ${a.description} / ${a.device} (backend ${a.backend}, ${a.featureLevel})`)
      assert.isTrue(a.limits.maxStorageBufferBindingSize >= 128 * MiB)
      assert.isTrue(a.limits.maxBufferSize >= 256 * MiB)
      assert.strictEqual(g.device.limits.maxBufferSize, a.limits.maxBufferSize)
      if (a.software) assert.oneOf(a.backend, ["opengles", "opengl", "vulkan"])
    })
  )

  it.effect("upload/download round trip across staging chunks", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const size = 5 * 65536 + 3 * 4096 + 20
      const host = new Uint32Array(size / 4)
      const r = rng(5)
      for (let i = 0; i < host.length; i++) host[i] = (r() * 2 ** 32) >>> 0
      const b = yield* GpuBuffer.make({ size: size + 8, label: "roundtrip" })
      yield* GpuBuffer.upload(g, b, 8, host, 65536)
      const back = yield* GpuBuffer.downloadU32(g, b, 8, size, 65536)
      assert.deepStrictEqual(Migrate.checksumCpu(back), Migrate.checksumCpu(host))
      assert.deepStrictEqual(yield* Migrate.checksum(g, b, 8, size), Migrate.checksumCpu(host))
      assert.strictEqual(back[back.length - 1], host[host.length - 1])
    })
  )

  it.effect("job fences signal in submission order on one timeline", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const b = yield* GpuBuffer.make({ size: 4 * MiB })
      const fences: Array<DmaFence.DmaFence> = []
      for (let i = 0; i < 6; i++) fences.push(yield* Migrate.fill(g, b, 0, (i % 2 === 0 ? 4 : 1) * MiB, i + 1))
      yield* GpuDevice.awaitFence(fences[5] as (typeof fences)[number])
      const stamps = fences.map((f) => f.timestamp ?? Number.NaN)
      assert.deepStrictEqual(
        stamps,
        [...stamps].sort((x, y) => x - y)
      )
      assert.isTrue(fences.every((f) => f.context === fences[0]?.context && f.isSignaled))
      for (let i = 1; i < fences.length; i++) assert.isTrue((fences[i]?.seqno ?? 0) > (fences[i - 1]?.seqno ?? 0))
    })
  )

  it.effect("each job is traced as a slice from submit to fence signal", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const sink = collectingSink()
      const b = yield* GpuBuffer.make({ size: 4096 })
      const fence = yield* Migrate.fill(g, b, 0, 4096, 3).pipe(Effect.provideService(CurrentTraceSink, sink))
      yield* GpuDevice.awaitFence(fence)
      const ev = sink.events.find((e) => e.cat === "gpu" && e.name === "fill")
      assert.isDefined(ev)
      assert.strictEqual(ev?.ph, "X")
      assert.strictEqual(ev?.args?.seqno, fence.seqno)
      assert.isTrue((ev?.dur ?? -1) >= 0)
    })
  )

  it.effect("validation errors in our own jobs fail with GpuError in debug mode", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const a = yield* GpuBuffer.make({ size: 4096 })
      const b = yield* GpuBuffer.make({ size: 4096 })
      const e = yield* Effect.flip(g.submit("bad-copy", (enc) => enc.copyBufferToBuffer(a.buffer, 0, b.buffer, 0, 6)))
      assert.strictEqual(e._tag, "GpuError")
      assert.strictEqual((e as { kind: string }).kind, "validation")
      yield* Migrate.fill(g, a, 0, 4096, 1).pipe(Effect.flatMap(GpuDevice.awaitFence))
      // buffer creation is checked too (debug mode): the error is this call's, not a later job's
      const usage = GpuBuffer.Usage.MAP_READ | GpuBuffer.Usage.STORAGE
      const c = yield* Effect.flip(GpuBuffer.make({ size: 16, usage, label: "bad-usage" }))
      assert.strictEqual(c._tag, "GpuError")
      assert.match(c.message, /bad-usage/)
      yield* g.check
    })
  )

  it.effect("bad requests are Invalid and nothing is submitted", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const a = yield* GpuBuffer.make({ size: 8192 })
      const b = yield* GpuBuffer.make({ size: 8192 })
      const before = g.submitted()
      const max = g.device.limits.maxBufferSize
      const failures = [
        Effect.flip(GpuBuffer.make({ size: 0 })),
        Effect.flip(GpuBuffer.make({ size: 6 })),
        Effect.flip(GpuBuffer.make({ size: max + 4 })),
        Effect.flip(GpuBuffer.upload(g, a, 2, new Uint32Array(4))),
        Effect.flip(GpuBuffer.upload(g, a, 8192, new Uint32Array(1))),
        Effect.flip(GpuBuffer.download(g, a, 0, 8196)),
        Effect.flip(GpuBuffer.upload(g, a, 0, new Uint32Array(4), 0)),
        Effect.flip(GpuBuffer.upload(g, a, 0, new Uint32Array(4), 6)),
        Effect.flip(GpuBuffer.download(g, a, 0, 16, -4)),
        Effect.flip(Migrate.copy(g, a, 0, b, 0, 6)),
        Effect.flip(Migrate.copy(g, a, 4, b, 0, 8192)),
        Effect.flip(Migrate.copy(g, a, 0, b, -4, 16)),
        Effect.flip(Migrate.copy(g, a, 0, b, 0, 0)),
        Effect.flip(Migrate.copyWithin(g, a, 0, 8, 8192)),
        Effect.flip(Migrate.fill(g, a, 3, 4, 1)),
        Effect.flip(Migrate.checksum(g, a, 0, 9000)),
        Effect.flip(Migrate.copyPages(g, a, a, new Uint32Array([0, 1]))),
        Effect.flip(Migrate.copyPages(g, a, b, new Uint32Array([2, 0]))),
        Effect.flip(Migrate.copyPages(g, a, b, new Uint32Array([0, 2]))),
        Effect.flip(Migrate.copyPages(g, a, b, new Uint32Array(0))),
        Effect.flip(Migrate.copyPages(g, a, b, new Uint32Array([0, 1, 1, 1]), "kernel")),
        Effect.flip(Migrate.copyPages(g, a, b, new Uint32Array([0, 1, 1, 1]), "copies")),
        Effect.flip(Migrate.gather(g, a, [-1], b)),
        Effect.flip(Migrate.gather(g, a, [0.5], b)),
        Effect.flip(Migrate.gather(g, a, [Number.NaN], b)),
        Effect.flip(Migrate.gather(g, a, [0, 1], b, 1)),
        Effect.flip(Migrate.gather(g, a, [0], b, -1)),
        Effect.flip(Migrate.scatter(g, a, 0, b, [1, 1])),
        Effect.flip(Migrate.scatter(g, a, 2 ** 32, b, [0])),
        Effect.flip(Migrate.fill(g, a, 0, 16, 1.5)),
        Effect.flip(Migrate.fill(g, a, 0, 16, 2 ** 32))
      ]
      for (const f of failures) assert.strictEqual((yield* f)._tag, "Invalid")
      assert.strictEqual(g.submitted(), before)
    })
  )
})
