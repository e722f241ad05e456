/**
 * A TTM device on a GPU device the driver owns (`ttm_device_init` is handed the driver's device):
 * `Device.makeShared` takes @drmkit/gpu's `GpuDevice` service from the context, `Device.make`
 * takes one in `config.gpu`; TTM's moves run on it, and closing the TTM device leaves it open.
 */

import { GpuDevice } from "@drmkit/gpu"
import { Access, Device } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bo, checksum, deviceConfig, KiB, MemType, makeDevice, pattern, place, validate, write } from "./helpers.ts"

const S = 64 * KiB

/** Creates a BO in TT, writes it, moves it to VRAM and checks its contents. */
const roundTrip = (dev: Device.Device) =>
  Effect.gen(function* () {
    const b = yield* bo(dev, S, [place(MemType.TT)])
    const data = pattern(S, 3)
    yield* write(b, data)
    yield* validate(b, [place(MemType.VRAM)])
    assert.strictEqual(b.resource?.memType, MemType.VRAM)
    assert.strictEqual(yield* checksum(b), Access.checksumOf(data))
  })

/** A job of the driver itself on the shared device: fails if the device was destroyed. */
const driverJob = (gpu: GpuDevice.GpuDeviceShape) =>
  Effect.flatMap(
    gpu.submit("driver", () => {}),
    GpuDevice.awaitFence
  ).pipe(Effect.orDie)

describe("a TTM device on the driver's GPU device", () => {
  it.live("makeShared runs the moves on the GpuDevice of the context", () =>
    Effect.gen(function* () {
      const gpu = yield* GpuDevice.GpuDevice
      const before = gpu.submitted()
      const dev = yield* Device.makeShared(deviceConfig())
      assert.strictEqual(dev.storage.gpu.gpu, gpu, "the context's device, not a new one")
      yield* roundTrip(dev)
      assert.isAbove(gpu.submitted(), before, "TTM's jobs went to the shared queue")
    }).pipe(Effect.scoped, Effect.provide(GpuDevice.layer({ label: "driver" })))
  )

  it.live("closing the TTM device leaves the shared GpuDevice open", () =>
    Effect.gen(function* () {
      const gpu = yield* GpuDevice.GpuDevice
      yield* Effect.scoped(Effect.flatMap(Device.makeShared(deviceConfig()), roundTrip))
      yield* driverJob(gpu)
      // A second TTM device on the same GPU device after the first one closed.
      const dev = yield* Device.make({ ...deviceConfig(), gpu })
      yield* roundTrip(dev)
      yield* Device.drain(dev)
      yield* driverJob(gpu)
    }).pipe(Effect.scoped, Effect.provide(GpuDevice.layer({ label: "driver" })))
  )

  it.live("by default each TTM device opens its own GPU device", () =>
    Effect.gen(function* () {
      const a = yield* makeDevice()
      const b = yield* makeDevice()
      assert.notStrictEqual(a.storage.gpu.gpu, b.storage.gpu.gpu)
      yield* roundTrip(a)
    })
  )
})
