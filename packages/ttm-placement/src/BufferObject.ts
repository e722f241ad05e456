/**
 * Buffer objects — models `struct ttm_buffer_object`: size, page alignment, type, priority, pin
 * count, resource, page-array state, reservation (own or shared), zombie flag and bulk-move group.
 *
 * @since 0.1.0
 */
import { checkInt, Invalid } from "@drmkit/core"
import type { Device } from "./Device.ts"
import { make as makeResv, type Resv } from "./internal/resv.ts"
import type { BulkMove } from "./Lru.ts"
import { MAX_BO_PRIORITY, PAGE_SIZE } from "./Placement.ts"
import type { Resource, ResourceOwner } from "./Resource.ts"

/**
 * `enum ttm_bo_type`: `device` (userspace mappable), `kernel`, `sg` (imported dma-buf; its pages
 * are not ours, so it is never swapped).
 *
 * @since 0.1.0
 * @category models
 */
export type BoType = "device" | "kernel" | "sg"

/**
 * State of the BO's page array (`struct ttm_tt`) when it sits in a `use_tt` manager: populated
 * (counted against the global page limit) or swapped out to host memory.
 *
 * @since 0.1.0
 * @category models
 */
export interface PageArray {
  populated: boolean
  /** Contents while swapped out (`TTM_TT_FLAG_SWAPPED`). */
  swapped: Uint8Array | undefined
}

/**
 * Creation parameters of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface BoOptions {
  /** Size in bytes; a positive multiple of the page size. */
  readonly size: number
  /** Alignment in pages (power of two, default 1). */
  readonly pageAlignment?: number
  readonly type?: BoType
  /** 0..3, lower is evicted first (default 0). */
  readonly priority?: number
  /** Share this reservation (per-VM BOs) instead of getting a private one. */
  readonly resv?: Resv
  readonly name?: string
}

let nextId = 1

/**
 * A buffer object.
 *
 * @since 0.1.0
 * @category models
 */
export class Bo implements ResourceOwner {
  readonly device: Device
  readonly id: number
  readonly name: string
  readonly size: number
  readonly numPages: number
  readonly pageAlignment: number
  readonly type: BoType
  priority: number
  pinCount = 0
  resource: Resource | undefined = undefined
  /** The reservation (`bo->base.resv`); zombies get a private copy. */
  resv: Resv
  /** Own reservation (`bo->base._resv`). */
  readonly ownResv: Resv
  tt: PageArray | undefined = undefined
  /** Zombie: released while busy, freed when idle (`bo->deleted`). */
  deleted = false
  /** Fully destroyed; must not be used. */
  destroyed = false
  bulkMove: BulkMove | undefined = undefined
  constructor(device: Device, o: BoOptions) {
    this.device = device
    this.id = nextId++
    this.name = o.name ?? `bo${this.id}`
    this.size = o.size
    this.numPages = o.size / PAGE_SIZE
    this.pageAlignment = o.pageAlignment ?? 1
    this.type = o.type ?? "device"
    this.priority = o.priority ?? 0
    this.ownResv = makeResv(`${this.name}.resv`)
    this.resv = o.resv ?? this.ownResv
  }
  /** Whether the page array holds the contents in host memory. */
  get swapped(): boolean {
    return this.tt?.swapped !== undefined
  }
}

/**
 * Checks creation options: size a positive page multiple, alignment a power of two, priority 0..3,
 * known type. Models the `-EINVAL` checks of `ttm_bo_init_reserved` plus drmkit's boundary rules.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkOptions = (o: BoOptions): Invalid | undefined =>
  checkInt("size", o.size, { min: PAGE_SIZE, multipleOf: PAGE_SIZE }) ??
  checkInt("pageAlignment", o.pageAlignment ?? 1, { min: 1, max: 1 << 30 }) ??
  ((o.pageAlignment ?? 1) & ((o.pageAlignment ?? 1) - 1)
    ? new Invalid({ what: "pageAlignment", reason: "must be a power of two", value: o.pageAlignment })
    : undefined) ??
  checkInt("priority", o.priority ?? 0, { max: MAX_BO_PRIORITY - 1 }) ??
  (["device", "kernel", "sg"].includes(o.type ?? "device")
    ? undefined
    : new Invalid({ what: "type", reason: "must be device, kernel or sg", value: o.type }))
