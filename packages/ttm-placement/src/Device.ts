/**
 * The TTM device — models `struct ttm_device` + `ttm_device_funcs`: the managers per memory type,
 * the `unevictable` list, the driver hooks (`evict_flags`, `eviction_valuable`, `move`), the global
 * limit on populated TT pages (swapout), statistics, and the GPU storage that holds BO contents.
 *
 * @since 0.1.0
 */
import { GpuDevice } from "@drmkit/gpu"
import { Effect, type Scope } from "effect"
import type { Bo } from "./BufferObject.ts"
import { GpuEngine } from "./internal/gpu.ts"
import { ListNode } from "./internal/list.ts"
import type { Held } from "./internal/resv.ts"
import { Storage } from "./internal/storage.ts"
import type { MemType, Place, Placement } from "./Placement.ts"
import { MemType as M, NUM_MEM_TYPES, PAGE_SIZE, place } from "./Placement.ts"
import type { Resource } from "./Resource.ts"
import type { Backend } from "./ResourceManager.ts"
import { ResourceManager, systemBackend } from "./ResourceManager.ts"

/**
 * What the driver's move hook decides for one move: copy on the GPU, bounce through a
 * `TEMPORARY` hop place first (`-EMULTIHOP`), or fail (e.g. `Busy` under `noWaitGpu`).
 *
 * @since 0.1.0
 * @category driver hooks
 */
export type MoveDecision =
  | { readonly _tag: "Copy" }
  | { readonly _tag: "Hop"; readonly place: Place }
  | { readonly _tag: "Fail"; readonly reason: string }

/**
 * The driver hooks (`struct ttm_device_funcs`).
 *
 * @since 0.1.0
 * @category driver hooks
 */
export interface DriverFuncs {
  /** `evict_flags`: where an evicted BO goes; empty = purge. */
  readonly evictFlags: (bo: Bo) => Placement
  /** `eviction_valuable`: may `bo` be evicted to make room for `place`? */
  readonly evictionValuable: (bo: Bo, place: Place, device: Device) => boolean
  /** `move`: how to move `bo` from its resource to `to`. */
  readonly move: (bo: Bo, to: Resource, evict: boolean) => MoveDecision
}

/**
 * Default hooks: VRAM and private types evict to TT, TT evicts to SYSTEM; a victim is valuable when
 * it intersects the requested window (`ttm_bo_eviction_valuable`); every move is a GPU copy.
 *
 * @since 0.1.0
 * @category driver hooks
 */
export const defaultFuncs: DriverFuncs = {
  evictFlags: (bo) => [place(bo.resource?.memType === M.TT ? M.SYSTEM : M.TT)],
  evictionValuable: (bo, p, device) => {
    const res = bo.resource
    if (res === undefined || p.memType === M.SYSTEM) return true
    return device.manager(res.memType)?.intersects(res, p) ?? false
  },
  move: () => ({ _tag: "Copy" })
}

/**
 * Operation context — models `struct ttm_operation_ctx`. `bytesMoved` accumulates every move,
 * hops included. The ww ticket comes from the caller's held reservation.
 *
 * @since 0.1.0
 * @category models
 */
export interface OperationCtx {
  readonly interruptible: boolean
  readonly noWaitGpu: boolean
  /** May evict BOs that share the reservation of `held` (already held by the caller). */
  readonly allowResEvict: boolean
  /** The caller's held reservation (`ctx->resv`), as its witness. */
  readonly held: Held | undefined
  bytesMoved: number
}

/**
 * Builds an operation context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const opCtx = (o: Partial<Omit<OperationCtx, "bytesMoved">> = {}): OperationCtx => ({
  interruptible: o.interruptible ?? true,
  noWaitGpu: o.noWaitGpu ?? false,
  allowResEvict: o.allowResEvict ?? false,
  held: o.held,
  bytesMoved: 0
})

/**
 * Device-wide counters.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  bytesMoved: number
  moves: number
  evictions: number
  swapouts: number
  swapins: number
  purges: number
}

/**
 * Manager configuration for {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ManagerConfig {
  readonly memType: MemType
  readonly name?: string
  readonly backend: Backend
  readonly useTt?: boolean
}

/**
 * A TTM device.
 *
 * @since 0.1.0
 * @category models
 */
export class Device {
  readonly managers: Array<ResourceManager | undefined> = Array.from({ length: NUM_MEM_TYPES }, () => undefined)
  readonly unevictable = new ListNode()
  readonly storage: Storage
  funcs: DriverFuncs
  readonly stats: Stats = { bytesMoved: 0, moves: 0, evictions: 0, swapouts: 0, swapins: 0, purges: 0 }
  /** Global cap on populated TT pages (`ttm_pages_limit`). */
  pageLimit: number
  /** Populated TT pages now. */
  ttPages = 0
  /** Live BOs, zombies included. */
  readonly bos = new Set<Bo>()
  /** Old resources held until their move fence signals (ghost objects). */
  readonly ghosts = new Set<Resource>()
  constructor(storage: Storage, funcs: DriverFuncs, pageLimit: number) {
    this.storage = storage
    this.funcs = funcs
    this.pageLimit = pageLimit
  }
  /** The manager of `memType` (`ttm_manager_type`). */
  manager(memType: MemType): ResourceManager | undefined {
    return this.managers[memType]
  }
  /** Registers a manager; fixed (non-`useTt`) and TT managers get a GPU arena. */
  addManager(c: ManagerConfig): ResourceManager {
    const useTt = c.useTt ?? c.memType !== M.VRAM
    const man = new ResourceManager(c.memType, c.name ?? `mem${c.memType}`, c.backend, useTt)
    this.managers[c.memType] = man
    if (Number.isFinite(c.backend.sizePages))
      this.storage.addArena(c.memType, c.backend.sizePages * PAGE_SIZE, man.name)
    return man
  }
}

/**
 * Waits until every GPU job has completed and ghosts have released their backing (a test and
 * teardown helper; models flushing the device's delayed work).
 *
 * @since 0.1.0
 * @category operations
 */
export const drain = (device: Device): Effect.Effect<void> => Effect.promise(() => device.storage.gpu.drain())

/**
 * Device configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceConfig {
  readonly managers: ReadonlyArray<ManagerConfig>
  readonly funcs?: Partial<DriverFuncs>
  /** Populated TT page cap (default: unlimited). */
  readonly pageLimit?: number
  /**
   * The GPU device the moves run on, owned by the caller (its scope outlives the TTM device's):
   * a driver that puts TTM moves and its own jobs (page tables, binds) on one GPU queue, as xe
   * does, passes it here — or uses {@link makeShared}. Default: TTM opens its own for its scope.
   */
  readonly gpu?: GpuDevice.GpuDeviceShape
}

/**
 * Builds a device with a system manager plus the given managers, its moves on `config.gpu` or on a
 * GPU device it opens itself. Scoped: closing the scope waits for TTM's jobs and destroys every
 * TTM buffer, and the GPU device too when TTM opened it (a given one is left to its owner).
 * Models `ttm_device_init`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: DeviceConfig): Effect.Effect<Device, never, Scope.Scope> =>
  Effect.gen(function* () {
    const gpu = yield* GpuEngine.open(config.gpu)
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const d = new Device(new Storage(gpu), { ...defaultFuncs, ...config.funcs }, config.pageLimit ?? Infinity)
        d.addManager({ memType: M.SYSTEM, name: "system", backend: systemBackend(), useTt: true })
        for (const m of config.managers) d.addManager(m)
        return d
      }),
      (d) =>
        Effect.promise(async () => {
          await d.storage.gpu.drain()
          d.storage.close()
          d.storage.gpu.close()
        })
    )
  })

/**
 * {@link make} on the `GpuDevice` service of the context (@drmkit/gpu's `GpuDevice.layer`): the
 * driver's one GPU queue carries TTM's moves and its own jobs, in submission order — as
 * `ttm_device_init` is handed the driver's device rather than opening one. The GPU device outlives
 * the TTM device; closing this scope leaves it open.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeShared = (
  config: Omit<DeviceConfig, "gpu">
): Effect.Effect<Device, never, Scope.Scope | GpuDevice.GpuDevice> =>
  GpuDevice.GpuDevice.use((gpu) => make({ ...config, gpu }))
