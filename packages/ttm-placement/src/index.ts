/**
 * @drmkit/ttm-placement public surface.
 *
 * @since 0.1.0
 */
export {}
