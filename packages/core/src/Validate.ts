/**
 * Boundary validation shared by every package: integers (non-negative, bounded, aligned) and
 * 64-bit addresses. The checks return an {@link Invalid} instead of throwing so hot paths can test
 * without allocating an Effect; the `require*` forms lift them into the error channel.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Invalid } from "./Errors.ts"

/**
 * Constraints for {@link checkInt}.
 *
 * @since 0.1.0
 * @category validation
 */
export interface IntRule {
  /** Smallest accepted value (default 0). */
  readonly min?: number
  /** Largest accepted value (default `Number.MAX_SAFE_INTEGER`). */
  readonly max?: number
  /** The value must be a multiple of this (alignment). */
  readonly multipleOf?: number
}

/**
 * Checks that `value` is a safe integer within `rule`; returns the {@link Invalid} describing the
 * first violation, or `undefined` when it is acceptable.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkInt = (what: string, value: unknown, rule: IntRule = {}): Invalid | undefined => {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return new Invalid({ what, reason: "must be a finite number", value })
  }
  if (!Number.isSafeInteger(value)) return new Invalid({ what, reason: "must be a safe integer", value })
  const min = rule.min ?? 0
  if (value < min) return new Invalid({ what, reason: `must be >= ${min}`, value })
  if (rule.max !== undefined && value > rule.max) return new Invalid({ what, reason: `must be <= ${rule.max}`, value })
  if (rule.multipleOf !== undefined && value % rule.multipleOf !== 0) {
    return new Invalid({ what, reason: `must be a multiple of ${rule.multipleOf}`, value })
  }
  return undefined
}

/**
 * {@link checkInt} in the error channel.
 *
 * @since 0.1.0
 * @category validation
 */
export const requireInt = (what: string, value: unknown, rule: IntRule = {}): Effect.Effect<number, Invalid> => {
  const err = checkInt(what, value, rule)
  return err === undefined ? Effect.succeed(value as number) : Effect.fail(err)
}

/**
 * Largest value of an unsigned 64-bit integer.
 *
 * @since 0.1.0
 * @category validation
 */
export const U64_MAX: bigint = (1n << 64n) - 1n

/**
 * Constraints for {@link checkU64}.
 *
 * @since 0.1.0
 * @category validation
 */
export interface U64Rule {
  readonly min?: bigint
  readonly max?: bigint
  readonly multipleOf?: bigint
}

/**
 * Checks that `value` is a `bigint` in `[min, max]` (default the whole u64 range) and aligned.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkU64 = (what: string, value: unknown, rule: U64Rule = {}): Invalid | undefined => {
  if (typeof value !== "bigint") return new Invalid({ what, reason: "must be a bigint", value })
  const min = rule.min ?? 0n
  const max = rule.max ?? U64_MAX
  if (value < min) return new Invalid({ what, reason: `must be >= ${min}`, value })
  if (value > max) return new Invalid({ what, reason: `must be <= 0x${max.toString(16)}`, value })
  if (rule.multipleOf !== undefined && value % rule.multipleOf !== 0n) {
    return new Invalid({ what, reason: `must be a multiple of 0x${rule.multipleOf.toString(16)}`, value })
  }
  return undefined
}

/**
 * {@link checkU64} in the error channel.
 *
 * @since 0.1.0
 * @category validation
 */
export const requireU64 = (what: string, value: unknown, rule: U64Rule = {}): Effect.Effect<bigint, Invalid> => {
  const err = checkU64(what, value, rule)
  return err === undefined ? Effect.succeed(value as bigint) : Effect.fail(err)
}
