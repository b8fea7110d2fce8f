/**
 * @packageDocumentation
 * Damselfly's Kubernetes manifests as typed objects (kubernetes-models): `renderAll(DEFAULTS)` yields
 * the files under deploy/kubernetes, each object validated against the Kubernetes schemas.
 */
export { DEFAULTS, type DeployOptions, type Manifest } from './manifests.js'
export { renderAll, type RenderedFile } from './render.js'
