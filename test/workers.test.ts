// Worker threads share the process's LMDB environment: a worker opening the same path
// commits, and the main thread sees it after moving to a newer snapshot.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { startWorker, workerDone } from './helpers/child'
import { tempDir } from './helpers/tmp'
import { rowsOf } from './helpers/writer.child'

test('a worker appends and commits; the main thread sees the rows after refresh()', async () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'int32'>('s', { dtype: 'int32', shape: [0, 4], blockBytes: 4096 })
  a.append(rowsOf(0, 3))
  store.commit()
  const serial = store.serial
  const messages = await workerDone(startWorker('writer.child.ts', ['append', dir, 's', '3', '400']))
  assert.equal(messages, ['done'])
  // main's snapshot has not moved
  assert.is(store.serial, serial)
  assert.is(a.rows, 3)
  assert.equal([...a.read().data], [...rowsOf(0, 3)])
  store.refresh()
  assert.is(a.rows, 403)
  assert.equal([...a.read().data], [...rowsOf(0, 403)])
  // the main handle still commits after the worker closed its own handle
  a.append(rowsOf(403, 1))
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal([...again.array('s').read().data], [...rowsOf(0, 404)])
  again.close()
})

test('several workers appending through transact() lose no row', async () => {
  const dir = tempDir()
  const store = open(dir)
  store.create('s', { dtype: 'int32', shape: [0, 4] })
  store.commit()
  const workers = [1, 2, 3].map((tag) => workerDone(startWorker('writer.child.ts', ['transact-append', dir, 's', String(tag), '40'])))
  // the main thread competes too
  for (let j = 0; j < 40; j++) store.transact((s) => s.array('s', 'int32').append(rowsOf(j, 1)), { retries: 1000 })
  await Promise.all(workers)
  store.refresh()
  const data = store.array('s', 'int32').read().data
  assert.is(data.length, 160 * 4)
  const seen = new Map<number, number[]>()
  for (let r = 0; r < 160; r++) {
    const v = data[r * 4]
    assert.equal([...data.subarray(r * 4, r * 4 + 4)], [v, v, v, v], `row ${r} is whole`)
    const tag = Math.floor(v / 10000)
    seen.set(tag, [...(seen.get(tag) ?? []), v % 10000])
  }
  for (const tag of [0, 1, 2, 3]) {
    // each writer's rows are all there, in its own order
    assert.equal(seen.get(tag), Array.from({ length: 40 }, (_, j) => j), `rows of writer ${tag}`)
  }
  store.close()
})

test('a worker that exits without close() leaves the main handle working', async () => {
  const dir = tempDir()
  const store = open(dir)
  store.create('s', { dtype: 'int32', shape: [0, 4] })
  store.commit()
  const code = `
    require(${JSON.stringify(require.resolve('tsx/cjs'))})
    const { open } = require(${JSON.stringify(require.resolve('../src/index'))})
    const s = open(${JSON.stringify(dir)})
    s.array('s').append(new Int32Array([1, 1, 1, 1]))
    s.commit()
    s.array('s').append(new Int32Array([2, 2, 2, 2])) // left uncommitted, handle left open
  `
  const { Worker } = await import('node:worker_threads')
  await new Promise<void>((resolve, reject) => {
    const w = new Worker(code, { eval: true })
    w.on('error', reject)
    w.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`exit ${c}`))))
  })
  store.refresh()
  assert.equal([...store.array('s').read().data], [1, 1, 1, 1])
  store.array('s', 'int32').append(Int32Array.of(3, 3, 3, 3))
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal([...again.array('s').read().data], [1, 1, 1, 1, 3, 3, 3, 3])
  again.close()
})

test('terminating a worker in the middle of txarray calls does not take the process down', async () => {
  const dir = tempDir()
  const s = open(dir)
  s.create('s', { dtype: 'int32', shape: [0, 4] })
  s.commit()
  // Each round's worker commits rows [0], [8], [16]... and reports each commit; it is
  // terminated at some point after its first commit, maybe in the middle of another.
  const reported: number[] = []
  for (let round = 0; round < 5; round++) {
    const worker = startWorker('writer.child.ts', ['spin', dir, 's'])
    let committed = 0
    await new Promise<void>((resolve) => {
      worker.on('message', (m: { committed?: number }) => {
        if (m.committed === undefined) return
        committed = m.committed
        if (committed === 1) resolve()
      })
    })
    await new Promise((r) => setTimeout(r, 20 + round * 15))
    await worker.terminate()
    reported.push(committed)
  }
  s.refresh()
  const data = s.array('s', 'int32').read().data
  // Rows come in runs, one per round, each 0, 8, 16... (only committed rows, whole); a run
  // holds at least the commits its worker reported (more when a commit finished but its
  // message was lost to the termination).
  const runs: number[] = []
  for (let r = 0; r < data.length / 4; r++) {
    const v = data[r * 4]
    assert.equal([...data.subarray(r * 4, r * 4 + 4)], [v, v, v, v], `row ${r} is whole`)
    if (v === 0) runs.push(0)
    assert.is(v, runs[runs.length - 1] * 8, `row ${r} continues its round's run`)
    runs[runs.length - 1]++
  }
  assert.is(runs.length, 5, 'one run of rows per round')
  runs.forEach((n, round) => {
    assert.ok(n >= reported[round], `round ${round}: ${n} rows, ${reported[round]} reported`)
  })
  // and the main handle still commits
  s.array('s', 'int32').append(rowsOf(7, 1))
  s.commit()
  assert.is(s.array('s').rows, data.length / 4 + 1)
  s.close()
})

test.run()
