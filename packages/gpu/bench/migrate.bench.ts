/**
 * Migration: 256 MiB buffer-to-buffer move (one job) vs one raw copyBufferToBuffer; gather of 64 K
 * scattered pages (copy commands and compute kernel) vs a raw contiguous copy of the same bytes,
 * with the two physical ceilings of this device measured in the same run; GPU checksum throughput.
 * Every row samples its job and the raw copy alternately, so both see the same box load.
 */
import { report } from "@drmkit/bench-kit"
import { GpuBuffer, GpuDevice, Migrate } from "@drmkit/gpu"
import { Effect } from "effect"
import { paired, timeEffect, withDevice } from "./harness.ts"

const MiB = 1024 * 1024
const SIZE = 256 * MiB
const PAGES = SIZE / 4096

await withDevice((gpu) =>
  Effect.gen(function* () {
    const src = yield* GpuBuffer.makeWith(gpu, { size: SIZE, label: "src" })
    const dst = yield* GpuBuffer.makeWith(gpu, { size: SIZE, label: "dst" })
    yield* Migrate.fill(gpu, src, 0, SIZE, 0x12345678).pipe(Effect.flatMap(GpuDevice.awaitFence))
    const done = <A extends Parameters<typeof GpuDevice.awaitFence>[0], E>(job: Effect.Effect<A, E>) =>
      job.pipe(Effect.flatMap(GpuDevice.awaitFence))
    const raw = done(gpu.submit("raw-copy", (enc) => enc.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, SIZE)))
    const vsRaw = <E>(job: Effect.Effect<unknown, E>, samples: number) => paired(job, raw, samples, 1)
    const move = yield* vsRaw(done(Migrate.copy(gpu, src, 0, dst, 0, SIZE)), 31)
    const moveXe = yield* vsRaw(done(Migrate.copy(gpu, src, 0, dst, 0, SIZE, Migrate.COPY_CHUNK)), 7)
    // gather: a random permutation of all 64K pages
    const perm = Array.from({ length: PAGES }, (_, i) => i)
    let x = 7
    for (let i = PAGES - 1; i > 0; i--) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      const j = x % (i + 1)
      const t = perm[i] as number
      perm[i] = perm[j] as number
      perm[j] = t
    }
    const inOrder = Array.from({ length: PAGES }, (_, i) => i)
    const copies = yield* vsRaw(done(Migrate.gather(gpu, src, perm, dst, 0, "copies")), 3)
    const kernel = yield* vsRaw(done(Migrate.gather(gpu, src, perm, dst, 0, "kernel")), 3)
    // ceilings: the same kernel over pages in order (= a compute copy of contiguous memory), and
    // 64K one-page copy commands in order (what the copies path pays per command, without scatter)
    const kernelCeil = yield* vsRaw(done(Migrate.gather(gpu, src, inOrder, dst, 0, "kernel")), 3)
    const perPage = done(
      gpu.submit("page-commands", (enc) => {
        for (let i = 0; i < PAGES; i++) enc.copyBufferToBuffer(src.buffer, i * 4096, dst.buffer, i * 4096, 4096)
      })
    )
    const commandCeil = yield* vsRaw(perPage, 3)
    const sumMs = yield* timeEffect(Migrate.checksum(gpu, dst), 3)
    yield* done(Migrate.gather(gpu, src, perm, dst, 0))
    const ok = (yield* Migrate.checksum(gpu, dst)).sum === (yield* Migrate.checksum(gpu, src)).sum
    const gib = (ms: number) => SIZE / (1024 * MiB) / (ms / 1000)
    const row = (name: string, m: { ms: number; peerMs: number; ratio: number }, goal: string, min?: number) => ({
      name,
      value: gib(m.ms),
      unit: "GiB/s",
      peer: "raw copyBufferToBuffer (contiguous, same run)",
      peerValue: gib(m.peerMs),
      ratio: m.ratio,
      goal,
      ...(min === undefined ? {} : { pass: m.ratio >= min })
    })
    report("migrate", [
      row("migrate 256 MiB (Migrate.copy, default 256 MiB passes, 1 job)", move, ">= 90% of raw", 0.9),
      row("migrate 256 MiB (Migrate.copy, xe-style 8 MiB passes, 1 job)", moveXe, "report"),
      row(
        `gather 64K random pages (256 MiB), copy commands${ok ? "" : " CHECKSUM MISMATCH"}`,
        copies,
        ">= 50% of raw (report)",
        0.5
      ),
      row("gather 64K random pages (256 MiB), compute kernel", kernel, ">= 50% of raw (report)", 0.5),
      row("  ceiling: same kernel, pages in order (contiguous compute copy)", kernelCeil, "report"),
      row("  ceiling: 64K one-page copy commands, pages in order", commandCeil, "report"),
      { name: "GPU checksum 256 MiB", value: gib(sumMs), unit: "GiB/s", goal: "report" }
    ])
  })
)
