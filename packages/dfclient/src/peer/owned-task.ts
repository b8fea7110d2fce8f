import type { Logger } from 'pino'
import { dfError, isDfError, type PiecesResponse, type TaskInfo } from '@damselfly/proto'
import type { TaskDirectory } from '../download/ports.js'
import type { PieceReporter } from '../supernode/piece-reporter.js'
import type { Endpoint } from '../supernode/ring.js'
import { isUnreachable, type TaskOwners } from '../supernode/task-owners.js'

export interface OwnedTaskComponents {
  peerId: string
  owners: TaskOwners
  reporter: PieceReporter
  /** The pieces of a blob this node can serve now (staged or held). */
  held: (digest: string, pieceCount: number) => number[]
  logger: Logger
}

/**
 * Moves of one download from a failed owner to the next: more would mean supernodes failing one
 * after the other within one pull, and then the pull does better from the upstream directly.
 */
const MAX_MOVES = 3

/**
 * The supernode task API for one download, as the download loop sees it (`TaskDirectory`), with the
 * owner of the task kept here: the loop never learns which supernode it talks to. The task is
 * registered at its owner (the ring's pick, or the supernode a running download of the same blob
 * already uses) and stays there while it answers. When the owner cannot be reached, or no longer
 * knows the task (it restarted), the download moves: it registers the task at the next owner by the
 * same hash (which starts that supernode's one upstream fetch of the blob, or joins it), re-reports
 * every piece this node already holds there, and answers the loop's next poll from the new owner.
 * Pending reports are delivered before each poll, so the plan counts fetches that just ended as ended.
 */
export class OwnedTask implements TaskDirectory {
  readonly #c: OwnedTaskComponents
  #endpoint: Endpoint | undefined
  #request: { digest: string, url: string, authorization?: string } | undefined
  #task: TaskInfo | undefined
  #release: (() => void) | undefined
  /** The next poll starts afresh: versions of different supernodes are unrelated. */
  #fresh = false
  /** Piece index → digest, from every reply: what the download has been told exists. */
  readonly #digests = new Map<number, string>()
  #moves = 0

  constructor (components: OwnedTaskComponents) {
    this.#c = components
  }

  /** The supernode the download talks to now. */
  get endpoint (): Endpoint | undefined { return this.#endpoint }

  /** Ends the download's hold on its owner (other downloads of the blob may keep it). */
  release (): void {
    this.#release?.()
    this.#release = undefined
  }

  /** Holds the current owner again for another read of the same download. */
  hold (): () => void {
    const e = this.#endpoint
    const digest = this.#request?.digest
    return e === undefined || digest === undefined ? () => {} : this.#c.owners.hold(digest, e)
  }

  registerTask = async (r: { digest: string, url: string, authorization?: string }, signal: AbortSignal): Promise<TaskInfo> => {
    this.#request = r
    const first = this.#c.owners.endpointFor(r.digest)
    const { endpoint, task } = await this.#registerFrom(first, new Set(), signal)
    this.#endpoint = endpoint
    this.#task = task
    this.#release = this.#c.owners.hold(r.digest, endpoint)
    return task
  }

  pollPieces: TaskDirectory['pollPieces'] = async (digest, since, waitMs, signal, at) => {
    await this.#c.reporter.deliver(digest)
    for (;;) {
      const e = this.#endpoint
      if (e === undefined) throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `task ${digest} is not registered`)
      const fresh = this.#fresh
      try {
        const res = await e.client.pollPieces(digest, { peerId: this.#c.peerId, since: fresh ? 0 : since, waitMs: fresh ? 0 : waitMs, ...at }, signal)
        this.#fresh = false
        return fresh ? this.#afterMove(res) : this.#remember(res)
      } catch (err) {
        if (signal.aborted) throw err
        const unreachable = isUnreachable(err)
        if (!unreachable && !(isDfError(err) && err.code === 'DF_ERR_TASK_UNKNOWN')) throw err
        if (this.#moves >= MAX_MOVES) throw err
        if (unreachable) this.#c.owners.ring.markDown(e, err instanceof Error ? err.message : String(err))
        await this.#move(e, unreachable, err, signal)
      }
    }
  }

  #remember (res: PiecesResponse): PiecesResponse {
    for (const p of res.pieces) this.#digests.set(p.index, p.digest)
    return res
  }

  /**
   * The first reply of the new owner, which has published only the pieces its own upstream fetch has
   * reached: every other piece the download was told of is listed with no source yet. Otherwise the
   * download would keep the old owner's sources for them, whose seed is gone, and give up on pieces
   * only that seed had, rounds before the new owner publishes them.
   */
  #afterMove (res: PiecesResponse): PiecesResponse {
    const listed = new Set(res.pieces.map(p => p.index))
    const waiting = [...this.#digests].filter(([index]) => !listed.has(index)).map(([index, digest]) => ({ index, digest, sources: [] }))
    return this.#remember({ ...res, pieces: [...res.pieces, ...waiting] })
  }

  reportPieces: TaskDirectory['reportPieces'] = (digest, indexes) => { this.#c.reporter.report(digest, indexes) }

  reportPieceResults: NonNullable<TaskDirectory['reportPieceResults']> = (digest, results) => { this.#c.reporter.reportResults(digest, results) }

  /** Registers the task at the next owner by the hash and re-reports what this node holds there. */
  async #move (from: Endpoint, unreachable: boolean, cause: unknown, signal: AbortSignal): Promise<void> {
    const r = this.#request as { digest: string, url: string, authorization?: string }
    this.#moves++
    // A supernode that forgot the task (it restarted) is still its owner: register there again.
    const exclude = new Set(unreachable ? [from.url] : [])
    const next = unreachable ? this.#pick(r.digest, exclude) : from
    const { endpoint, task } = await this.#registerFrom(next, exclude, signal)
    if (this.#task !== undefined && (task.size !== this.#task.size || task.pieceCount !== this.#task.pieceCount)) {
      throw dfError('DF_ERR_PROTOCOL', `supernode ${endpoint.url} describes ${r.digest} as ${task.size} bytes, ${from.url} said ${this.#task.size}`)
    }
    this.#endpoint = endpoint
    this.#fresh = true
    this.#c.owners.move(r.digest, endpoint)
    const held = this.#c.held(r.digest, task.pieceCount)
    if (held.length > 0) {
      this.#c.reporter.report(r.digest, held, 0)
      await this.#c.reporter.deliver(r.digest)
    }
    this.#c.logger.warn({ from: from.url, to: endpoint.url, heldPieces: held.length, err: cause instanceof Error ? cause.message : String(cause) }, 'task owner failed; the download moved to the next supernode by the hash')
  }

  /** The owner among the healthy supernodes not excluded. */
  #pick (digest: string, exclude: ReadonlySet<string>): Endpoint | undefined {
    return this.#c.owners.ring.owner(digest, this.#c.owners.ring.healthy().filter(e => !exclude.has(e.url)))
  }

  /** Registers at `first`, then at each next owner while supernodes cannot be reached. */
  async #registerFrom (first: Endpoint | undefined, exclude: Set<string>, signal: AbortSignal): Promise<{ endpoint: Endpoint, task: TaskInfo }> {
    const r = this.#request as { digest: string, url: string, authorization?: string }
    let e = first
    for (;;) {
      if (e === undefined) throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `no healthy supernode to register ${r.digest} with`)
      try {
        const task = await e.client.registerTask({ digest: r.digest, url: r.url, peerId: this.#c.peerId, ...(r.authorization === undefined ? {} : { headers: { authorization: r.authorization } }) }, signal)
        return { endpoint: e, task }
      } catch (err) {
        if (signal.aborted || !isUnreachable(err)) throw err
        this.#c.owners.ring.markDown(e, err instanceof Error ? err.message : String(err))
        exclude.add(e.url)
        e = this.#pick(r.digest, exclude)
      }
    }
  }
}
