/**
 * Worker for shared-memory.test.ts (TXA_CHILD set). workerData: { dir, shared } where
 * shared is a SharedArrayBuffer of 64 int32: [0, 8) holds rows the worker appends to
 * array 'a' (int32 [n]); the worker then read()s 'a' into [16, 16 + rows) and take()s
 * windows [0, 2) and [4, 6) into [48, 52), all through TypedArrays over `shared`.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { open } from '../../src/index'

function main({ dir, shared }: { dir: string; shared: SharedArrayBuffer }): void {
  const store = open(dir)
  const a = store.array('a', 'int32')
  a.append(new Int32Array(shared, 0, 8))
  store.commit()
  const rows = a.rows
  a.read(null, new Int32Array(shared, 16 * 4, rows))
  a.take([0, 4], 2, new Int32Array(shared, 48 * 4, 4))
  store.close()
  parentPort?.postMessage({ rows })
}

if (process.env.TXA_CHILD) main(workerData)
