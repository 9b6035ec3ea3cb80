// write() and append() to an array that has no view change copies of its blocks the
// engine keeps (no memory mapping): everything a transaction reads sees them, a view
// opened later in the same transaction shows them, commit stores exactly them, abort
// drops them, and a stream of commits reuses the same buffers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open, slice } from '../src/index'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

const BLOCK = 4096
const COLS = 5 // 20-byte int32 rows: blocks never hold a whole number of rows

/** Rows [first, first + count) of the model: row r holds r*COLS .. r*COLS+COLS-1. */
function rows(first: number, count: number): Int32Array {
  return Int32Array.from({ length: count * COLS }, (_, k) => first * COLS + k)
}

function equalModel(actual: ArrayLike<number>, model: ArrayLike<number>, what: string): void {
  assert.is(actual.length, model.length, `${what}: length`)
  for (let k = 0; k < model.length; k++) {
    if (actual[k] !== model[k]) assert.unreachable(`${what}: element ${k} is ${actual[k]}, expected ${model[k]}`)
  }
}

test('write() and append() without a view: read() and take() see them, another handle after commit, abort drops them', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create('a', { dtype: 'int32', shape: [0, COLS], blockBytes: BLOCK })
  a.append(rows(0, 1000))
  store.commit()
  const model = rows(0, 1000)

  a.append(rows(1000, 500)) // crosses several blocks, the first one partly committed
  a.write([slice(10, 12), null], new Int32Array(2 * COLS).fill(-7))
  a.write([slice(0, 1000, 97), 2], 42) // strided: one element in many blocks
  const expected = Int32Array.from([...model, ...rows(1000, 500)])
  expected.fill(-7, 10 * COLS, 12 * COLS)
  for (let r = 0; r < 1000; r += 97) expected[r * COLS + 2] = 42
  equalModel(a.read().data, expected, 'read() in the transaction')
  const starts = [0, 11, 996, 1400]
  const windows = a.take(starts, 3).data
  equalModel(windows, Int32Array.from(starts.flatMap((s) => [...expected.subarray(s * COLS, (s + 3) * COLS)])), 'take()')

  const other = open(dir)
  equalModel(other.array('a', 'int32').read().data, model, 'another handle before commit')
  store.abort()
  equalModel(a.read().data, model, 'after abort')

  a.append(rows(1000, 500))
  a.write([slice(10, 12), null], new Int32Array(2 * COLS).fill(-7))
  a.write([slice(0, 1000, 97), 2], 42)
  store.commit()
  other.refresh()
  equalModel(other.array('a', 'int32').read().data, expected, 'another handle after commit')
  other.close()
  store.close()
})

test('a view opened after write() and append() in the same transaction shows them; all of it commits', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create('a', { dtype: 'int32', shape: [0, COLS], blockBytes: BLOCK })
  a.append(rows(0, 800))
  store.commit()
  a.append(rows(800, 400))
  a.write([3, null], new Int32Array(COLS).fill(9))
  const expected = rows(0, 1200)
  expected.fill(9, 3 * COLS, 4 * COLS)
  const v = a.view()
  equalModel(v, expected, 'the view')
  v[5 * COLS] = -1 // through the view
  a.write([6, 0], -2) // and write() once a view exists
  a.append(rows(1200, 10))
  expected[5 * COLS] = -1
  expected[6 * COLS] = -2
  const all = Int32Array.from([...expected, ...rows(1200, 10)])
  equalModel(a.read().data, all, 'read() before commit')
  store.commit()
  store.close()
  const again = open(dir)
  equalModel(again.array('a', 'int32').read().data, all, 'after reopen')
  again.close()
})

test('a cut inside a changed block, then growth: the rows past the cut read as zeros, before and after commit', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create('a', { dtype: 'int32', shape: [0, COLS], blockBytes: BLOCK })
  a.append(rows(0, 600))
  store.commit()
  a.append(rows(600, 100))
  a.resize([450, COLS]) // inside a committed block, past staged ones
  a.resize([650, COLS])
  const expected = new Int32Array(650 * COLS)
  expected.set(rows(0, 450))
  equalModel(a.read().data, expected, 'before commit')
  a.append(rows(650, 3))
  const all = Int32Array.from([...expected, ...rows(650, 3)])
  store.commit()
  equalModel(a.read().data, all, 'after commit')
  store.close()
  const again = open(dir)
  equalModel(again.array('a', 'int32').read().data, all, 'after reopen')
  again.close()
})

test('a stream of append+commit batches, with writes into earlier rows, equals a model after each commit', () => {
  const dir = tempDir()
  const rng = new Rng(17)
  const store = open(dir, { sync: false })
  const a = store.create('a', { dtype: 'int32', shape: [0, COLS], blockBytes: BLOCK })
  store.commit()
  let model = new Int32Array(0)
  let committed = model
  let n = 0
  for (let batch = 0; batch < 120; batch++) {
    const k = rng.int(1, 400)
    a.append(rows(n, k))
    const grown = new Int32Array((n + k) * COLS)
    grown.set(model)
    grown.set(rows(n, k), n * COLS)
    model = grown
    n += k
    if (batch % 7 === 3) {
      const r = rng.int(0, n - 1)
      a.write([r, null], new Int32Array(COLS).fill(-batch))
      model.fill(-batch, r * COLS, (r + 1) * COLS)
    }
    if (batch % 11 === 5) {
      store.abort() // the batch's rows and write are gone
      model = committed
      n = a.rows
      assert.is(n * COLS, model.length, `rows after the abort of batch ${batch}`)
    }
    store.commit()
    committed = model.slice()
    if (batch % 10 === 0 || batch === 119) equalModel(a.read().data, model, `after batch ${batch}`)
  }
  store.close()
  const again = open(dir)
  equalModel(again.array('a', 'int32').read().data, model, 'after reopen')
  again.close()
})

test('appends of two handles to one array without views are both kept (the later commit is rebased)', () => {
  const dir = tempDir()
  const s1 = open(dir, { sync: false })
  const a1 = s1.create('a', { dtype: 'int32', shape: [0, COLS], blockBytes: BLOCK })
  a1.append(rows(0, 300))
  s1.commit()
  const s2 = open(dir, { sync: false })
  const a2 = s2.array('a', 'int32')
  a1.append(rows(300, 100))
  a2.append(rows(400, 50))
  s1.commit()
  s2.commit()
  assert.is(a2.rows, 450)
  equalModel(a2.read().data, rows(0, 450), 'both appends, in commit order')
  s1.refresh()
  equalModel(a1.read().data, rows(0, 450), 'the first handle after refresh')
  s1.close()
  s2.close()
})

test('another handle\'s write into the block a stream continues is kept by the next append', () => {
  const dir = tempDir()
  const s1 = open(dir, { sync: false })
  const a1 = s1.create('a', { dtype: 'int32', shape: [0, COLS], blockBytes: BLOCK })
  a1.append(rows(0, 300)) // 6000 bytes: block 1 is the partial tail
  s1.commit()
  a1.append(rows(300, 10)) // still in block 1
  s1.commit()
  const s2 = open(dir, { sync: false })
  s2.array('a', 'int32').write([305, null], new Int32Array(COLS).fill(-5)) // block 1
  s2.commit()
  s2.close()
  s1.refresh()
  a1.append(rows(310, 10)) // block 1 again: must start from the other handle's bytes
  s1.commit()
  const expected = rows(0, 320)
  expected.fill(-5, 305 * COLS, 306 * COLS)
  equalModel(a1.read().data, expected, 'same handle')
  s1.close()
  const again = open(dir)
  equalModel(again.array('a', 'int32').read().data, expected, 'after reopen')
  again.close()
})

test('a shrink, committed, then growth past the block a stream continued reads zeros', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create('a', { dtype: 'int32', shape: [0, COLS], blockBytes: BLOCK })
  a.append(rows(0, 1000)) // blocks 0..4, block 4 partial
  store.commit()
  a.append(rows(1000, 10)) // block 4 again
  store.commit()
  a.resize([450, COLS]) // cut inside block 2: blocks 3 and 4 are deleted
  store.commit()
  const kept = a.rows
  a.resize([1010, COLS])
  a.append(rows(1010, 2))
  store.commit()
  const expected = new Int32Array(1012 * COLS)
  expected.set(rows(0, kept))
  expected.set(rows(1010, 2), 1010 * COLS)
  equalModel(a.read().data, expected, 'rows past the cut are zeros, then the appended ones')
  store.close()
})

test.run()
