/**
 * Node 20 lacks `Promise.withResolvers` (ES2024), which libp2p 3, yamux 8, it-queue and mortice call on
 * every dial. Without it a dial fails with a misleading ECONNRESET (see shared LIBP2P.md §0).
 * Import this module first in every entry point and in vitest `setupFiles`. It is a no-op on Node ≥22.
 */
interface WithResolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const P = Promise as unknown as { withResolvers?: <T>() => WithResolvers<T> }
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>(): WithResolvers<T> {
    let resolve!: WithResolvers<T>['resolve']
    let reject!: WithResolvers<T>['reject']
    const promise = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}

export {}
