// store.watch(): every commit of every process, once and in order, with what it did to
// each array; `since` resumes after a serial while the commit log still holds it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbortError, type CommitEvent, LogPrunedError, open, slice } from '../src/index'
import { tempDir } from './helpers/tmp'

async function take(it: AsyncIterator<CommitEvent>, n: number): Promise<CommitEvent[]> {
  const out: CommitEvent[] = []
  while (out.length < n) {
    const r = await it.next()
    if (r.done) break
    out.push(r.value)
  }
  return out
}

test('each kind of change is announced with its rows, in commit order', async () => {
  const dir = tempDir()
  const s = open(dir)
  const w = s.watch({ keepAlive: true })
  const start = s.serial
  const before = Date.now()
  const x = s.create('x', { dtype: 'float64', shape: [0, 4], blockBytes: 4096 })  // 128 rows a block
  s.commit()
  x.append(new Float64Array(4 * 300))
  s.commit()
  x.write([slice(130, 132)], 1)  // block 1: rows 128..255
  s.commit()
  x.setAttrs({ unit: 'V' })
  s.commit()
  x.resize([100, 4])
  s.commit()
  s.delete('x')
  s.commit()
  const events = await take(w, 6)
  assert.equal(events.map((e) => e.serial), [1, 2, 3, 4, 5, 6].map((i) => start + i))
  for (const e of events) assert.ok(e.time >= before - 1000 && e.time <= Date.now() + 1000, 'commit time')
  const base = { appended: null, changed: [], resized: false, attrs: false, segments: false, created: false, deleted: false }
  assert.equal(events[0].arrays, { x: { ...base, rows: 0, created: true } })
  assert.equal(events[1].arrays, { x: { ...base, rows: 300, appended: [0, 300] } })
  assert.equal(events[2].arrays, { x: { ...base, rows: 300, changed: [[128, 256]] } })
  assert.equal(events[3].arrays, { x: { ...base, rows: 300, attrs: true } })
  assert.equal(events[4].arrays, { x: { ...base, rows: 100, resized: true, changed: [[0, 100]] } }, 'the new last block is rewritten')
  assert.equal(events[5].arrays, { x: { ...base, rows: 0, deleted: true } })
  await w.return!()
  s.close()
})

test('commits of other handles arrive too; `arrays` filters; since resumes after a serial', async () => {
  const dir = tempDir()
  const s = open(dir)
  s.create('a', { dtype: 'int32', shape: [0] })
  s.create('b', { dtype: 'int32', shape: [0] })
  s.commit()
  const since = s.serial
  const other = open(dir)
  for (let i = 0; i < 6; i++) {
    other.array(i % 2 ? 'a' : 'b', 'int32').append(new Int32Array([i, i]))
    other.commit()
  }
  const all = await take(s.watch({ since, keepAlive: true }), 6)
  assert.equal(all.map((e) => Object.keys(e.arrays)), [['b'], ['a'], ['b'], ['a'], ['b'], ['a']])
  assert.equal(all.map((e) => e.arrays[Object.keys(e.arrays)[0]].appended), [[0, 2], [0, 2], [2, 4], [2, 4], [4, 6], [4, 6]])
  const onlyA = await take(s.watch({ since, arrays: ['a'], keepAlive: true }), 3)
  assert.equal(onlyA.map((e) => e.serial), [all[1].serial, all[3].serial, all[5].serial])
  const resumed = await take(s.watch({ since: all[2].serial, keepAlive: true }), 3)
  assert.equal(resumed.map((e) => e.serial), all.slice(3).map((e) => e.serial))
  other.close()
  s.close()
})

test('concurrent appends that were rebased announce where the rows landed', async () => {
  const dir = tempDir()
  const s = open(dir)
  s.create('x', { dtype: 'int32', shape: [0] })
  s.commit()
  const w = s.watch({ keepAlive: true })
  const p = open(dir)
  const q = open(dir)
  p.array('x', 'int32').append(new Int32Array([1, 1, 1]))
  q.array('x', 'int32').append(new Int32Array([2, 2]))
  p.commit()
  q.commit()  // rebased onto p's rows
  const events = await take(w, 2)
  assert.equal(events.map((e) => e.arrays.x.appended), [[0, 3], [3, 5]])
  s.refresh()
  assert.equal([...s.array('x', 'int32').read().data], [1, 1, 1, 2, 2])
  p.close()
  q.close()
  s.close()
})

test('LogPrunedError when the log no longer holds the commit after `since`', async () => {
  const dir = tempDir()
  const s = open(dir, { logRetention: 64 })
  s.create('x', { dtype: 'int32', shape: [0] })
  s.commit()
  for (let i = 0; i < 200; i++) {
    s.array('x', 'int32').append(new Int32Array([i]))
    s.commit({ sync: false })
  }
  let error: unknown
  try {
    await s.watch({ since: 1 }).next()
  } catch (e) {
    error = e
  }
  assert.instance(error, LogPrunedError)
  assert.is((error as LogPrunedError).code, 'TXA_LOG_PRUNED')
  // the recent past is still there
  const recent = await take(s.watch({ since: s.serial - 10, keepAlive: true }), 10)
  assert.is(recent.length, 10)
  assert.is(recent[9].serial, s.serial)
  s.close()
  // the retention is a setting of the store: a later open without the option keeps it
  const again = open(dir)
  for (let i = 0; i < 128; i++) {
    again.array('x', 'int32').append(new Int32Array([i]))
    again.commit({ sync: false })
  }
  let pruned = false
  try {
    await again.watch({ since: again.serial - 200 }).next()
  } catch (e) {
    pruned = e instanceof LogPrunedError
  }
  assert.ok(pruned, 'still 64 (plus a batch of 64) after reopening')
  again.close()
})

test('break, an aborted signal and close() end a pending watch', async () => {
  const dir = tempDir()
  const s = open(dir)
  const controller = new AbortController()
  const aborted = s.watch({ signal: controller.signal, keepAlive: true }).next()
  setTimeout(() => controller.abort(), 20)
  let error: unknown
  try {
    await aborted
  } catch (e) {
    error = e
  }
  assert.instance(error, AbortError)
  const w = s.watch({ keepAlive: true })
  const pending = w.next()
  await w.return!()
  assert.equal(await pending, { done: true, value: undefined })
  const closing = s.watch({ keepAlive: true }).next()
  s.close()
  assert.equal(await closing, { done: true, value: undefined })
})

test.run()
