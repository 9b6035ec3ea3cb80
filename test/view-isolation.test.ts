// A view shows its handle's snapshot: pages another process or handle commits reach an
// existing view only when this handle moves (refresh(), commit(), abort()), and a page this
// handle has already loaded keeps the old values until then. Workers make their own views.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ConflictError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { runChild, startWorker, workerDone } from './helpers/child'
import { sameBytes } from './helpers/bytes'
import { tempDir } from './helpers/tmp'

const N = 40_000 // float64 in 4 KiB blocks (512 elements each): 79 blocks
const PER_BLOCK = 512

function ramp(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => i)
}

function setup() {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [0], blockBytes: 4096 })
  a.append(ramp(N))
  store.commit()
  store.close()
  const reader = open(dir)
  const r = reader.array('a', 'float64')
  return { dir, reader, r }
}

test('a child process commits: an existing view shows the change after refresh(), not before', () => {
  const { dir, reader, r } = setup()
  const v = r.view()
  const loaded = 5 * PER_BLOCK + 7 // a block this handle loads before the child commits
  const untouched = 60 * PER_BLOCK + 3 // a block nobody here has touched yet
  assert.is(v[loaded], loaded)
  runChild('writer.child.ts', ['write', dir, 'a', String(loaded), '-1'])
  runChild('writer.child.ts', ['write', dir, 'a', String(untouched), '-2'])
  // before refresh: the old snapshot, whether the page was loaded already or not
  assert.is(v[loaded], loaded, 'a loaded page keeps the old snapshot')
  assert.is(v[untouched], untouched, 'a page loaded after the commit still shows the old snapshot')
  assert.is(r.read([loaded]).data[0], loaded)
  reader.refresh()
  assert.is(v[loaded], -1, 'the loaded page was dropped and reloaded by refresh()')
  assert.is(v[untouched], -2, 'the other page too')
  assert.is(v[loaded + 1], loaded + 1, 'the rest of the block is unchanged')
  const expected = ramp(N)
  expected[loaded] = -1
  expected[untouched] = -2
  sameBytes(v, expected, 'the whole view after refresh')
  sameBytes(r.read().data, expected, 'read() after refresh')
  reader.close()
})

for (const move of ['commit', 'abort'] as const) {
  test(`another process's changes reach an existing view on ${move}() as well`, () => {
    const { dir, reader, r } = setup()
    const v = r.view()
    let sum = 0
    for (let i = 0; i < N; i++) sum += v[i] // every page loaded
    assert.is(sum, (N * (N - 1)) / 2)
    runChild('writer.child.ts', ['write', dir, 'a', '100', '-100'])
    v[30_000] = 0.25 // our own change, in another block
    assert.is(v[100], 100)
    reader[move]()
    assert.is(v[100], -100, `after ${move}()`)
    assert.is(v[30_000], move === 'commit' ? 0.25 : 30_000)
    reader.close()
  })
}

test('another handle in the same process: its commit reaches our view after refresh() only', () => {
  const { dir, reader, r } = setup()
  const v = r.view()
  const w = open(dir)
  const wa = w.array('a', 'float64')
  const wv = wa.view()
  for (let i = 0; i < N; i += 1000) assert.is(v[i], i) // load some blocks of ours
  // the writer changes a loaded block and an unloaded one, through its own view
  wv[2000] = -2000
  wv[2001] = -2001
  wv[39_999] = -1
  assert.is(v[2000], 2000, 'uncommitted writes of another handle are invisible')
  w.commit()
  assert.is(v[2000], 2000, 'committed, but our snapshot has not moved')
  assert.is(v[39_999], 39_999)
  assert.is(v[2001], 2001)
  reader.refresh()
  assert.is(v[2000], -2000)
  assert.is(v[2001], -2001)
  assert.is(v[39_999], -1)
  // and the other way round
  v[7] = 0.5
  reader.commit()
  assert.is(wv[7], 7, "the writer's view stays on its snapshot")
  w.refresh()
  assert.is(wv[7], 0.5)
  w.close()
  reader.close()
})

test('with a tiny mapping budget, unmapped blocks map again from our snapshot, not the newest one', () => {
  const { dir } = setup()
  const reader = open(dir, { mappings: 16 }) // 16 mappings: 8 to 16 blocks of a 79-block array
  const v = reader.array('a', 'float64').view()
  const sum = () => {
    let t = 0
    for (let i = 0; i < v.length; i++) t += v[i]
    return t
  }
  const total = (N * (N - 1)) / 2
  assert.is(sum(), total)
  assert.ok(reader.stats().evictedBlocks > 0, 'the scan unmapped blocks')
  for (const i of [0, 20_000, N - 1]) runChild('writer.child.ts', ['write', dir, 'a', String(i), '0.5'])
  assert.is(sum(), total, 'a second scan (reloading evicted pages) still sees our snapshot')
  reader.refresh()
  assert.is(sum(), total - (0 + 20_000 + N - 1) + 1.5, 'after refresh')
  reader.close()
})

test('a block written through our view and committed by another handle meanwhile: ConflictError, then abort() shows theirs', () => {
  const { dir, reader, r } = setup()
  const v = r.view()
  v[3] = -3 // block 0, dirty here
  runChild('writer.child.ts', ['write', dir, 'a', '4', '-4']) // block 0 too, committed there
  assert.is(v[4], 4, 'their write is not visible in our snapshot')
  throwsCode(() => reader.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(v[3], -3, 'a failed commit keeps our writes')
  reader.abort()
  assert.is(v[3], 3)
  assert.is(v[4], -4)
  v[3] = -3
  reader.commit()
  assert.equal([...r.read().data.subarray(2, 6)], [2, -3, -4, 5])
  reader.close()
})

test('an appended tail reaches an existing handle: a new view after refresh() shows it', () => {
  const { dir, reader, r } = setup()
  const old = r.view()
  const w = open(dir)
  w.array('a', 'float64').append(Float64Array.of(1, 2, 3))
  w.commit()
  w.close()
  assert.is(r.rows, N)
  reader.refresh()
  assert.is(r.rows, N + 3)
  assert.is(old.length, N, 'an old view keeps its length')
  assert.equal([...r.view(N)], [1, 2, 3])
  reader.close()
})

test('a worker thread opens the same store, makes its own view, sees committed data; its commit reaches us', async () => {
  const { dir, reader, r } = setup()
  const v = r.view()
  assert.is(v[10], 10)
  const messages = await workerDone<Record<string, number>>(startWorker('view.child.ts', ['view-worker', dir, 'a', '10', '-10']))
  const total = (N * (N - 1)) / 2
  assert.equal(messages, [
    { length: N, sum: total },
    { length: N, sum: total - 20 },
    { closedLength: 0 }, // close() detached the worker's view
  ])
  assert.is(v[10], 10, 'before refresh')
  reader.refresh()
  assert.is(v[10], -10, 'after refresh')
  reader.close()
})

test.run()
