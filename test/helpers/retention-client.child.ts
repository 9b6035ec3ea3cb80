/**
 * Child script for remote-retention.test.ts (TXA_CHILD set): one process holding a lazy
 * handle's snapshot on a remote store until it is killed.
 *   retention-client.child.ts URL SCHEMA CACHE
 *     Opens the store lazily, prints "holding <serial>" and waits (kill -9 ends it).
 */
import { open } from '../../src/index'

if (process.env.TXA_CHILD) {
  const [url, schema, cache] = process.argv.slice(2)
  const store = open(cache, { remote: url, remoteSchema: schema, remoteBlocks: 'lazy' })
  console.log(`holding ${store.serial}`)
  setInterval(() => undefined, 1 << 30)
}
