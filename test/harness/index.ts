/**
 * Real-process test harness: a CNCF distribution registry, deterministic test images, push helpers,
 * skopeo / containerd (`ctr`) / Docker-classic clients, and Damselfly's own binaries as child processes.
 * Every helper stops only what it started, by PID, and works in private temp dirs.
 */
export * from './access-log.js'
export * from './binaries.js'
export * from './browser.js'
export * from './cleanup.js'
export * from './containerd.js'
export * from './docker-classic.js'
export * from './harbor.js'
export * from './images.js'
export * from './layer-blob.js'
export * from './metrics.js'
export * from './netns.js'
export * from './ports.js'
export * from './processes.js'
export * from './push.js'
export * from './raw-http.js'
export * from './registry.js'
export * from './skopeo.js'
export * from './throttle-proxy.js'
