/**
 * Migration: 256 MiB buffer-to-buffer move (chunked job) vs one raw copyBufferToBuffer; gather of
 * 64 K scattered pages vs a raw contiguous copy of the same bytes; GPU checksum throughput.
 */
import { report } from "@drmkit/bench-kit"
import { GpuBuffer, GpuDevice, Migrate } from "@drmkit/gpu"
import { Effect } from "effect"
import { timeEffect, withDevice } from "./harness.ts"

const MiB = 1024 * 1024
const SIZE = 256 * MiB
const PAGES = SIZE / 4096

await withDevice((gpu) =>
  Effect.gen(function* () {
    const src = yield* GpuBuffer.makeWith(gpu, { size: SIZE, label: "src" })
    const dst = yield* GpuBuffer.makeWith(gpu, { size: SIZE, label: "dst" })
    yield* Migrate.fill(gpu, src, 0, SIZE, 0x12345678).pipe(Effect.flatMap(GpuDevice.awaitFence))
    const raw = gpu
      .submit("raw-copy", (enc) => enc.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, SIZE))
      .pipe(Effect.flatMap(GpuDevice.awaitFence))
    const rawMs = yield* timeEffect(raw)
    const moveMs = yield* timeEffect(Migrate.copy(gpu, src, 0, dst, 0, SIZE).pipe(Effect.flatMap(GpuDevice.awaitFence)))
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
    const gatherMs = yield* timeEffect(
      Migrate.gather(gpu, src, perm, dst, 0, "copies").pipe(Effect.flatMap(GpuDevice.awaitFence))
    )
    const kernelMs = yield* timeEffect(
      Migrate.gather(gpu, src, perm, dst, 0, "kernel").pipe(Effect.flatMap(GpuDevice.awaitFence)),
      3
    )
    const sumMs = yield* timeEffect(Migrate.checksum(gpu, dst), 3)
    const ok = (yield* Migrate.checksum(gpu, dst)).sum === (yield* Migrate.checksum(gpu, src)).sum
    const gib = (ms: number) => SIZE / (1024 * MiB) / (ms / 1000)
    report("migrate", [
      {
        name: "migrate 256 MiB (Migrate.copy, 8 MiB chunks, 1 job)",
        value: gib(moveMs),
        unit: "GiB/s",
        peer: "raw copyBufferToBuffer",
        peerValue: gib(rawMs),
        ratio: rawMs / moveMs,
        goal: ">= 90% of raw",
        pass: rawMs / moveMs >= 0.9
      },
      {
        name: `gather 64K random pages (256 MiB), copy commands${ok ? "" : " CHECKSUM MISMATCH"}`,
        value: gib(gatherMs),
        unit: "GiB/s",
        peer: "raw contiguous copy",
        peerValue: gib(rawMs),
        ratio: rawMs / gatherMs,
        goal: ">= 50% of raw (report)",
        pass: rawMs / gatherMs >= 0.5 && ok
      },
      {
        name: "gather 64K random pages (256 MiB), compute kernel",
        value: gib(kernelMs),
        unit: "GiB/s",
        peer: "raw contiguous copy",
        peerValue: gib(rawMs),
        ratio: rawMs / kernelMs,
        goal: ">= 50% of raw (report)",
        pass: rawMs / kernelMs >= 0.5
      },
      { name: "GPU checksum 256 MiB", value: gib(sumMs), unit: "GiB/s", goal: "report" }
    ])
  })
)
