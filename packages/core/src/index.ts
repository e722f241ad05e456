/**
 * @drmkit/core — errno-named tagged errors, branded units, boundary validation and the trace
 * event type. Tiny on purpose: every other package depends on it.
 *
 * @since 0.1.0
 */
export * from "./Errors.ts"
export * from "./Trace.ts"
export * from "./Units.ts"
export * from "./Validate.ts"
