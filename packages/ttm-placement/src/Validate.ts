/**
 * `ttm_bo_validate` — the single entry point for placing a BO, exactly as in the kernel:
 *
 * 1. the BO's resv must be held (witness; checked at run time too — a defect otherwise);
 *    bad placements are `Invalid` (nothing changed); an empty placement purges the backing;
 * 2. two passes (`force` false, then true); in each, **compatibility first** (no move, bytesMoved
 *    unchanged), **then** the pin check (pinned and incompatible → `Invalid`), then allocation
 *    (pass 1 skips `FALLBACK` places and never evicts, pass 2 skips `DESIRED` places and evicts),
 *    then the move (multihop through `TEMPORARY` places when the driver asks);
 * 3. a final `NoSpace` is reported as `NoMemory`. On failure nothing changed except BOs that were
 *    legitimately evicted on the way.
 *
 * @since 0.1.0
 */
import { type Busy, type Interrupted, Invalid, NoMemory, NoSpace, type RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import type { Bo } from "./BufferObject.ts"
import { type Device, type OperationCtx, opCtx } from "./Device.ts"
import { moveTo, purge } from "./internal/move.ts"
import { allocResource, compatible, withOrphanCleanup } from "./internal/placement.ts"
import { type Held, isHeld } from "./internal/resv.ts"
import { checkPlacement, type Placement } from "./Placement.ts"

/**
 * Errors of {@link validate}: `NoMemory` (no place found even with eviction — also when a ticket
 * lock inside the eviction walk hit `Deadlock`: exit the transaction and retry), `Invalid` (bad
 * placement, or pinned and not compatible), `Busy` (the driver's move refused, e.g. under
 * `noWaitGpu`), `RestartSys`/`Interrupted` (interruptible waits).
 *
 * @since 0.1.0
 * @category errors
 */
export type ValidateError = NoMemory | Invalid | Busy | RestartSys | Interrupted

/**
 * Dies unless `held` is the live witness of `bo`'s reservation (`dma_resv_assert_held`).
 *
 * @since 0.1.0
 * @category assertions
 */
export const assertHeld = (held: Held, bo: Bo): Effect.Effect<void> =>
  held.target === bo.resv && isHeld(held)
    ? Effect.void
    : Effect.die(new Error(`dma_resv_assert_held: ${bo.resv.name} is not held by the caller`))

/**
 * Checks a placement's shape (see `checkPlacement`): a memory type outside 0..7, bad fpfn/lpfn or
 * unknown flags are `Invalid`. A valid type without a registered (or with a disabled) manager is
 * skipped silently during placement, as in the kernel (KUnit `ttm_bo_validate_invalid_placement`
 * expects `-ENOMEM` for it).
 *
 * @since 0.1.0
 * @category validation
 */
export const checkPlacementFor = (_device: Device, placement: Placement): Invalid | undefined =>
  checkPlacement(placement)

const pass = (
  dev: Device,
  held: Held,
  bo: Bo,
  placement: Placement,
  ctx: OperationCtx,
  force: boolean
): Effect.Effect<"done" | "nospace", ValidateError | NoSpace> => {
  if (bo.resource !== undefined && compatible(dev, bo.resource, placement, force)) return DONE
  if (bo.pinCount > 0)
    return Effect.fail(new Invalid({ what: bo.name, reason: "pinned and not compatible with the placement" }))
  return Effect.flatMap(allocResource(dev, held, bo, placement, ctx, force), (res) => {
    if (res instanceof NoSpace) return NOSPACE
    return Effect.map(moveTo(dev, held, bo, res, false, ctx), () => {
      bo.tt ??= { populated: false, swapped: undefined }
      return "done" as const
    })
  })
}

const DONE: Effect.Effect<"done"> = Effect.succeed("done")
const NOSPACE: Effect.Effect<"nospace"> = Effect.succeed("nospace")

/**
 * `ttm_bo_validate(bo, placement, ctx)`.
 *
 * @since 0.1.0
 * @category operations
 */
export const validate = (
  held: Held,
  bo: Bo,
  placement: Placement,
  ctx: OperationCtx = opCtx()
): Effect.Effect<void, ValidateError> =>
  Effect.suspend(() => {
    if (held.target !== bo.resv || !isHeld(held)) return assertHeld(held, bo)
    const bad = checkPlacementFor(bo.device, placement)
    if (bad !== undefined) return Effect.fail(bad)
    // Fast path, same semantics: pass 1 finds the resource compatible → nothing to do.
    const res = bo.resource
    if (res !== undefined && placement.length > 0 && compatible(bo.device, res, placement, false)) return Effect.void
    return slowValidate(held, bo, placement, ctx)
  })

const slowValidate = (
  held: Held,
  bo: Bo,
  placement: Placement,
  ctx: OperationCtx
): Effect.Effect<void, ValidateError> => {
  const dev = bo.device
  const noMemory = () => new NoMemory({ what: bo.name, requested: bo.size })
  const run = Effect.suspend((): Effect.Effect<void, ValidateError | NoSpace> => {
    if (placement.length === 0) {
      if (bo.pinCount > 0) return Effect.fail(new Invalid({ what: bo.name, reason: "cannot purge a pinned BO" }))
      purge(dev, bo)
      return Effect.void
    }
    return Effect.flatMap(pass(dev, held, bo, placement, ctx, false), (first) =>
      first === "done"
        ? Effect.void
        : Effect.flatMap(pass(dev, held, bo, placement, ctx, true), (second) =>
            second === "done" ? Effect.void : Effect.fail(noMemory())
          )
    )
  })
  return withOrphanCleanup(
    dev,
    ctx,
    Effect.catchTag(run, "NoSpace", (e) => Effect.fail(new NoMemory({ what: bo.name, requested: e.requested })))
  )
}
