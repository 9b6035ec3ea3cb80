/**
 * Remote stores for the tests of several machines: every store in a fresh schema of one
 * database per test process, each "machine" a handle with a cache directory of its own.
 */
import { randomBytes } from 'node:crypto'
import { open, type Store } from '../../src/index'
import type { TestPostgres } from './postgres'
import { tempDir } from './tmp'

export interface RemoteStore {
  url: string
  schema: string
  /** Opens a machine of the store: a handle on `cache` (default: a new directory). */
  machine(cache?: string): Store
}

/** Returns a maker of remote stores on `server`, whose schemas start with `prefix`. */
export function remoteStores(server: TestPostgres, prefix: string): () => Promise<RemoteStore> {
  let database: string | null = null
  return async () => {
    const url = (database ??= await server.freshDatabase())
    const schema = `${prefix}_${randomBytes(5).toString('hex')}`
    return { url, schema, machine: (cache = tempDir()) => open(cache, { remote: url, remoteSchema: schema }) }
  }
}
