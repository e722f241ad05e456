/**
 * Migration kernels (xe_migrate / amdgpu buffer funcs analogues): chunked buffer copies, overlap-safe
 * in-buffer copies (directed blocks and bounce), random page-list gather/scatter, fill/clear, and
 * GPU checksums checked against the CPU on downloaded data.
 */
import { GpuBuffer, GpuDevice, Migrate } from "@drmkit/gpu"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { DeviceLayer, gpu, rng } from "./helpers.ts"

const randomWords = (n: number, seed: number) => {
  const r = rng(seed)
  const out = new Uint32Array(n)
  for (let i = 0; i < n; i++) out[i] = (r() * 2 ** 32) >>> 0
  return out
}

layer(DeviceLayer)("migration", (it) => {
  it.effect("copy between buffers across chunk boundaries", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const host = randomWords(65536, 1)
      const src = yield* GpuBuffer.make({ size: host.byteLength, label: "src" })
      const dst = yield* GpuBuffer.make({ size: host.byteLength, label: "dst" })
      yield* GpuBuffer.upload(g, src, 0, host)
      const cases = fc.sample(
        fc.tuple(fc.nat(16000), fc.nat(16000), fc.integer({ min: 1, max: 30000 }), fc.integer({ min: 1, max: 3000 })),
        { numRuns: 12, seed: 7 }
      )
      for (const [s, d, n, c] of cases) {
        const [so, dof, size, chunk] = [s * 4, d * 4, n * 4, c * 4]
        yield* Migrate.fill(g, dst, 0, dst.size, 0xabcdef).pipe(Effect.flatMap(GpuDevice.awaitFence))
        yield* Migrate.copy(g, src, so, dst, dof, size, chunk).pipe(Effect.flatMap(GpuDevice.awaitFence))
        const back = yield* GpuBuffer.downloadU32(g, dst)
        const want = new Uint32Array(host.length).fill(0xabcdef)
        want.set(host.subarray(s, s + n), d)
        assert.deepStrictEqual(
          Migrate.checksumCpu(back),
          Migrate.checksumCpu(want),
          `copy ${so}->${dof} ${size}/${chunk}`
        )
        assert.deepStrictEqual(yield* Migrate.checksum(g, dst, dof, size), Migrate.checksumCpu(host.subarray(s, s + n)))
      }
    })
  )

  it.effect("overlapping in-buffer copies behave like memmove (directed blocks and bounce)", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const words = 32768
      const buf = yield* GpuBuffer.make({ size: words * 4, label: "memmove" })
      const model = randomWords(words, 2)
      yield* GpuBuffer.upload(g, buf, 0, model)
      const cases = fc.sample(
        fc.tuple(fc.nat(words - 1), fc.integer({ min: -3000, max: 3000 }), fc.integer({ min: 1, max: 12000 })),
        { numRuns: 25, seed: 11 }
      )
      // fixed cases: tiny distance up and down (bounce), 1/16th distance (16 directed blocks), disjoint
      const fixed: Array<[number, number, number]> = [
        [0, 1, 30000],
        [5, -4, 30000],
        [100, 640, 10240],
        [9000, -640, 10240],
        [0, 20000, 9000]
      ]
      for (const [s0, delta, n0] of [...fixed, ...cases]) {
        const s = s0
        const d = Math.min(Math.max(0, s + delta), words - 1)
        const n = Math.max(1, Math.min(n0, words - Math.max(s, d)))
        yield* Migrate.copyWithin(g, buf, s * 4, d * 4, n * 4).pipe(Effect.flatMap(GpuDevice.awaitFence))
        model.copyWithin(d, s, s + n)
      }
      const back = yield* GpuBuffer.downloadU32(g, buf)
      for (let i = 0; i < words; i++) if (back[i] !== model[i]) assert.fail(`word ${i}: ${back[i]} != ${model[i]}`)
    })
  )

  it.effect("random page lists: gather then scatter round-trips, checksums agree", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const pages = 512
      const host = randomWords(pages * 1024, 3)
      const src = yield* GpuBuffer.make({ size: pages * 4096, label: "scattered" })
      const packed = yield* GpuBuffer.make({ size: pages * 4096, label: "packed" })
      const back = yield* GpuBuffer.make({ size: pages * 4096, label: "back" })
      yield* GpuBuffer.upload(g, src, 0, host)
      const lists = fc.sample(fc.uniqueArray(fc.nat(pages - 1), { minLength: 1, maxLength: 300 }), {
        numRuns: 9,
        seed: 5
      })
      // the kernel in both shapes (blocked for CPU rasterisers, strided for GPUs), and copy commands
      const other = { ...g, adapter: { ...g.adapter, software: !g.adapter.software } }
      for (const [n, list] of lists.entries()) {
        const strategy = n % 3 === 2 ? "copies" : "kernel"
        const dev = n % 3 === 1 ? other : g
        const at = pages - list.length
        yield* Migrate.gather(dev, src, list, packed, at, strategy).pipe(Effect.flatMap(GpuDevice.awaitFence))
        const want = new Uint32Array(list.length * 1024)
        list.forEach((p, i) => {
          want.set(host.subarray(p * 1024, (p + 1) * 1024), i * 1024)
        })
        const gpuSum = yield* Migrate.checksum(g, packed, at * 4096, list.length * 4096)
        assert.deepStrictEqual(gpuSum, Migrate.checksumCpu(want))
        assert.deepStrictEqual(Migrate.checksumCpu(yield* GpuBuffer.downloadU32(g, packed, at * 4096)), gpuSum)
        yield* Migrate.fill(g, back, 0, back.size, 0).pipe(Effect.flatMap(GpuDevice.awaitFence))
        yield* Migrate.scatter(dev, packed, at, back, list, strategy).pipe(Effect.flatMap(GpuDevice.awaitFence))
        const restored = yield* GpuBuffer.downloadU32(g, back)
        for (const p of list) {
          const a = restored.subarray(p * 1024, (p + 1) * 1024)
          assert.deepStrictEqual(Migrate.checksumCpu(a), Migrate.checksumCpu(host.subarray(p * 1024, (p + 1) * 1024)))
        }
      }
    })
  )

  it.effect("fill, clear and checksum across a binding-window boundary", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const w = Migrate.windowBytes(g)
      const buf = yield* GpuBuffer.make({ size: w + 8 * 4096, label: "big" })
      const dst = yield* GpuBuffer.make({ size: 4 * 4096, label: "small" })
      const at = w - 4 * 4096
      yield* Migrate.fill(g, buf, at, 8 * 4096, 0x5a5a5a5a).pipe(Effect.flatMap(GpuDevice.awaitFence))
      yield* Migrate.fill(g, buf, at + 4096, 4096, 0).pipe(Effect.flatMap(GpuDevice.awaitFence))
      const want = new Uint32Array(8 * 1024).fill(0x5a5a5a5a)
      want.fill(0, 1024, 2048)
      assert.deepStrictEqual(yield* Migrate.checksum(g, buf, at, 8 * 4096), Migrate.checksumCpu(want))
      const first = at / 4096
      for (const strategy of ["kernel", "copies"] as const) {
        yield* Migrate.fill(g, dst, 0, dst.size, 1).pipe(Effect.flatMap(GpuDevice.awaitFence))
        yield* Migrate.gather(g, buf, [first + 1, first + 5, first + 7, first], dst, 0, strategy).pipe(
          Effect.flatMap(GpuDevice.awaitFence)
        )
        const got = yield* GpuBuffer.downloadU32(g, dst)
        assert.strictEqual(got[0], 0)
        assert.strictEqual(got[1024], 0x5a5a5a5a)
        assert.strictEqual(got[4095], 0x5a5a5a5a)
      }
      const sums = Migrate.checksumCpu(new Uint32Array(8))
      assert.notDeepEqual(sums, Migrate.checksumCpu(new Uint32Array([0, 0, 0, 0, 0, 0, 0, 1])))
    })
  )
})
