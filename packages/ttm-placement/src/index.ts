/**
 * @drmkit/ttm-placement — TTM rebuilt as a typed SDK: memory types with range (drm_mm) and buddy
 * (drm_buddy) resource managers, buffer objects with placements, `validate` with LRU eviction under
 * the caller's ww ticket, pinning, bulk moves, zombies, swapout under a global page limit, and moves
 * that are real GPU copy jobs whose fences go into the BO's reservation.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Access from "./Access.ts"
/** @since 0.1.0 */
export * as Buddy from "./Buddy.ts"
/** @since 0.1.0 */
export * as BufferObject from "./BufferObject.ts"
/** @since 0.1.0 */
export * as Debug from "./Debug.ts"
/** @since 0.1.0 */
export * as Device from "./Device.ts"
/** @since 0.1.0 */
export * as DrmMm from "./DrmMm.ts"
/** @since 0.1.0 */
export * as Eviction from "./Eviction.ts"
/** @since 0.1.0 */
export * as Fence from "./Fence.ts"
/** @since 0.1.0 */
export * as Lifecycle from "./Lifecycle.ts"
/** @since 0.1.0 */
export * as Lru from "./Lru.ts"
/** @since 0.1.0 */
export * as Managers from "./Managers.ts"
/** @since 0.1.0 */
export * as Pin from "./Pin.ts"
/** @since 0.1.0 */
export * as Placement from "./Placement.ts"
/** @since 0.1.0 */
export * as Reserve from "./Reserve.ts"
/** @since 0.1.0 */
export * as Resource from "./Resource.ts"
/** @since 0.1.0 */
export * as ResourceManager from "./ResourceManager.ts"
/** @since 0.1.0 */
export * as Validate from "./Validate.ts"
