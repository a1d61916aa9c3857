/*
 * htm bound to Preact's h(): tagged templates instead of JSX, so the
 * dashboard is served as written, with no build step (docs/operations.md).
 */
import { h } from 'preact'
import htm from 'htm'

export const html = htm.bind(h)
