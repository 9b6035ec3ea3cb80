/**
 * The link's side of page faults that wait for a fetch (docs/scale-out.md, "A fault that
 * waits for a fetch"): in userfaultfd mode a view's fault on a stub is left unanswered by
 * the fault service, which posts the version (and the stubs of the fault's window) to the
 * handle's fetch channel; this thread is woken, fetches them in one round trip on its
 * connection, hands the bytes back (the snapshot takes them and the faults are served, no
 * JavaScript on the faulting thread), then writes them over the cache's stubs.
 *
 * A fetch that fails is tried again, backing off, for `retryMs`; then its versions are
 * reported failed: their faults read zeros and the handle's commit refuses until it moves.
 */
import { Client } from 'pg'
import { addon, type NativeFetchRequest } from '../binding'
import { fetchVersions } from './block-fetch'
import { batchesOf } from './lazy-blocks'

export interface FaultFetchDeps {
  url: string
  connectTimeoutMs: number
  /** A failure the server reported with the connection intact (not worth a retry). */
  isServerError(e: unknown): boolean
  /** Writes fetched versions over the cache's stubs (after the faults were served). */
  fill(arrayId: number, blocks: { index: number; serial: number; data: Buffer }[]): void
  schema: string
  retryMs: number
}

/** The most bytes one round trip asks for. */
const BATCH_BYTES = 64 << 20

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The fault fetches of each channel listened to on this thread: their connection. */
const serving = new Map<number, { client: Client | null; closed: boolean }>()

/**
 * Listens to fetch channel `channel` on this thread until stopFaultFetches(). Its fetches
 * go one at a time over a connection of their own, so that they never queue behind a
 * commit or a catch-up of the link.
 */
export function serveFaultFetches(channel: number, deps: FaultFetchDeps): void {
  const state = { client: null as Client | null, closed: false }
  serving.set(channel, state)

  async function connected(): Promise<Client> {
    if (state.client) return state.client
    // A statement that never answers (a lock, a stalled server) is given up after retryMs
    // like a lost connection: the faults behind it do not wait for it.
    const fresh = new Client({ connectionString: deps.url, connectionTimeoutMillis: deps.connectTimeoutMs, query_timeout: deps.retryMs })
    fresh.on('error', () => { if (state.client === fresh) state.client = null })
    fresh.on('end', () => { if (state.client === fresh) state.client = null })
    try {
      await fresh.connect()
    } catch (e) {
      await fresh.end().catch(() => undefined)
      throw e
    }
    if (state.closed) {
      await fresh.end().catch(() => undefined)
      throw new Error('the link is closed')
    }
    state.client = fresh
    return fresh
  }

  function drop(broken: Client): void {
    if (state.client === broken) state.client = null
    broken.end().catch(() => undefined)
  }

  async function fetchWithRetries(batch: readonly NativeFetchRequest[]) {
    const deadline = performance.now() + deps.retryMs
    let delay = 25
    for (;;) {
      let c: Client | null = null
      try {
        c = await connected()
        return await fetchVersions(c, batch, deps.schema)
      } catch (e) {
        if (c && !deps.isServerError(e)) drop(c)
        if (state.closed || deps.isServerError(e) || performance.now() + delay > deadline) throw e
      }
      await sleep(delay)
      delay = Math.min(delay * 2, 500)
    }
  }

  async function answer(batch: readonly NativeFetchRequest[]) {
    let found
    try {
      found = await fetchWithRetries(batch)
    } catch {
      addon.failFetched(channel, batch)
      return
    }
    const fetched = found.filter((f) => f.data !== null) as (NativeFetchRequest & { data: Buffer })[]
    // A version the server no longer holds (retention) is a failed fetch for its faults.
    const gone = found.filter((f) => f.data === null)
    try {
      addon.deliverFetched(channel, fetched)
    } finally {
      if (gone.length > 0) addon.failFetched(channel, gone)
    }
    // Into the cache after the faults were served, so that later snapshots read them locally.
    setImmediate(() => {
      const byArray = new Map<number, { index: number; serial: number; data: Buffer }[]>()
      for (const f of fetched) {
        let list = byArray.get(f.arrayId)
        if (!list) byArray.set(f.arrayId, list = [])
        list.push({ index: f.index, serial: f.serial, data: f.data })
      }
      for (const [arrayId, blocks] of byArray) {
        try {
          deps.fill(arrayId, blocks)
        } catch {
          // the cache keeps its stubs: they are fetched again when read
        }
      }
    })
  }

  addon.listenFetchChannel(channel, () => {
    let requests: NativeFetchRequest[]
    try {
      requests = addon.takeFetchRequests(channel)
    } catch {
      return  // the channel is gone (the handle closed)
    }
    for (const batch of batchesOf(requests, BATCH_BYTES)) {
      queue = queue.then(() => answer(batch)).catch(() => {
        try {
          addon.failFetched(channel, batch)
        } catch {
          // the channel is gone: its faults were answered when it closed
        }
      })
    }
  })
  let queue: Promise<void> = Promise.resolve()
}

/** Stops listening to fetch channel `channel` (the handle closed it) and ends its connection. */
export async function stopFaultFetches(channel: number): Promise<void> {
  addon.unlistenFetchChannel(channel)
  const state = serving.get(channel)
  serving.delete(channel)
  if (!state) return
  state.closed = true
  await state.client?.end().catch(() => undefined)
  state.client = null
}
