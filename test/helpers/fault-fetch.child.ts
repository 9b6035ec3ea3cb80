// A worker thread with a lazy handle of its own, for remote-fault-fetch.test.ts: views the
// whole array `x`, reads the first element of each block in `blocks` through the view (each
// read faults, and waits while this thread's link fetches the block), and posts what it read
// with the handle's blocksFetched.
// workerData: { url, schema, blocks: number[], perBlock: number }
import { workerData, parentPort } from 'node:worker_threads'
import { open } from '../../src/index'
import { tempDir } from './tmp'

if (process.env.TXA_CHILD && parentPort) {
  const { url, schema, blocks, perBlock } = workerData as { url: string; schema: string; blocks: number[]; perBlock: number }
  const store = open(tempDir(), { remote: url, remoteSchema: schema, remoteBlocks: 'lazy' })
  const view = store.array('x', 'float64').view()
  const before = store.stats().blocksFetched
  const values = blocks.map((b) => view[b * perBlock])
  parentPort.postMessage({ before, values, fetched: store.stats().blocksFetched })
  store.close()
}
