// The plan step of a commit to another store: an array's uncommitted changes as values —
// exactly the bytes a local commit would store (dirty blocks up to the array's end,
// trailing zeros trimmed), the first block a shrink cuts, and for an append-only
// transaction the appended bytes alone — whichever way they were written.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { addon, type NativeArray, type NativeSession } from '../src/binding'
import { encodeFormat } from '../src/metadata'
import { tempDir } from './helpers/tmp'

// float64 [2048, 4] in 4096-byte blocks: block k holds rows 128k..128k+127.
const BLOCK = 4096
const ROW = 32

function setup(): { session: NativeSession; array: NativeArray } {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create('a', { dtype: 'float64', shape: [2048, 4], blockBytes: BLOCK })
  a.write([null, null], new Float64Array(2048 * 4).fill(1))
  store.commit()
  store.close()
  const session = new addon.NativeSession(dir, undefined, undefined, 64, { create: false, readOnly: false, format: encodeFormat() })
  const record = session.getRecord('a')!
  const array = session.track(record.id, BLOCK, record.rows * record.rowBytes, 'a')
  return { session, array }
}

test('writes through a view: the dirty blocks, whole, with what the snapshot held around the writes', () => {
  const { session, array } = setup()
  const view = new Float64Array(array.view(0, array.byteLength))
  view[128 * 4] = 5        // block 1, first value
  view[3 * 128 * 4 + 7] = 6 // block 3
  const planned = array.plan()
  assert.equal(planned.blocks.map((b) => b.index), [1, 3])
  const block1 = new Float64Array(planned.blocks[0].data.buffer.slice(planned.blocks[0].data.byteOffset, planned.blocks[0].data.byteOffset + BLOCK))
  assert.is(planned.blocks[0].data.byteLength, BLOCK)
  assert.is(block1[0], 5)
  assert.ok(block1.subarray(1).every((v) => v === 1))
  assert.is(planned.appendOnly, false)
  assert.is(planned.shrinkFromBlock, -1)
  session.close()
})

test('writes without a view (staged blocks): a block of zeros plans as empty, others whole', () => {
  const { session, array } = setup()
  array.scatter(5 * BLOCK, [BLOCK / 8], [8], 8, new Float64Array(BLOCK / 8))
  array.scatter(6 * BLOCK + 8, [1], [8], 8, new Float64Array([42]))
  const planned = array.plan()
  assert.equal(planned.blocks.map((b) => [b.index, b.data.byteLength]), [[5, 0], [6, BLOCK]])
  const six = new Float64Array(planned.blocks[1].data.slice().buffer)
  assert.equal([six[0], six[1], six[2]], [1, 42, 1])
  session.close()
})

test('an append: the appended bytes alone; a shrink: the first block cut', () => {
  const { session, array } = setup()
  const length = array.byteLength
  array.resize(length + 3 * ROW)
  const rows = new Float64Array(3 * 4).map((_, i) => i + 10)
  array.scatter(length, [12], [8], 8, rows)
  const appended = array.plan()
  assert.is(appended.appendOnly, true)
  assert.equal(appended.blocks, [])
  assert.equal(new Float64Array(appended.appended!.buffer.slice(appended.appended!.byteOffset, appended.appended!.byteOffset + 3 * ROW)), rows)
  session.refresh()
  array.adoptCommittedLength(length)
  array.resize(700 * ROW)  // rows 700..: block 5 (rows 640..767) is the last one kept
  const cut = array.plan()
  assert.is(cut.appendOnly, false)
  assert.is(cut.shrinkFromBlock, 6)
  session.close()
})

test.run()
