// Snapshot isolation: a handle reads one snapshot until its own commit(), abort() or
// refresh(), however many commits other handles and processes make meanwhile.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ConflictError, NotFoundError, TransactionError, open } from '../src/index'
import { runChild } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'
import { rowsOf } from './helpers/writer.child'

function setup() {
  const dir = tempDir()
  const writer = open(dir)
  const w = writer.create<'int32'>('s', { dtype: 'int32', shape: [0, 4], blockBytes: 4096 })
  w.append(rowsOf(0, 10))
  writer.commit()
  const reader = open(dir)
  const r = reader.array('s', 'int32')
  return { dir, writer, w, reader, r }
}

const expectRows = (data: Int32Array, n: number, what: string) => assert.equal([...data], [...rowsOf(0, n)], what)

for (const move of ['refresh', 'commit', 'abort'] as const) {
  test(`a reader's snapshot stays put while another handle commits, and moves on ${move}()`, () => {
    const { writer, w, reader, r } = setup()
    expectRows(r.read().data, 10, 'initial')
    const serial = reader.serial
    w.append(rowsOf(10, 300)) // crosses several blocks
    w.write([0], Int32Array.of(-1, -1, -1, -1))
    writer.commit()
    w.append(rowsOf(310, 5))
    writer.commit()
    // the reader, unmoved
    assert.is(reader.serial, serial)
    assert.is(r.rows, 10)
    assert.equal(r.shape, [10, 4])
    expectRows(r.read().data, 10, 'reader before moving')
    assert.equal([...reader.array('s', 'int32').read([0]).data], [0, 0, 0, 0])
    reader[move]()
    assert.is(reader.serial, writer.serial)
    assert.equal(r.shape, [315, 4])
    const expected = rowsOf(0, 315)
    expected.fill(-1, 0, 4)
    assert.equal([...r.read().data], [...expected], 'reader after moving')
    writer.close()
    reader.close()
  })
}

test('a reader does not see arrays created after its snapshot until it moves on', () => {
  const { writer, reader } = setup()
  writer.create('new', { dtype: 'uint8', shape: [2] })
  writer.commit()
  assert.is(reader.has('new'), false)
  assert.equal(reader.list(), ['s'])
  throwsCode(() => reader.array('new'), NotFoundError, 'TXA_NOT_FOUND')
  reader.refresh()
  assert.is(reader.has('new'), true)
  assert.equal(reader.list(), ['new', 's'])
  writer.close()
  reader.close()
})

test('a reader keeps reading an array another handle deleted, until it moves on', () => {
  const { writer, reader, r } = setup()
  writer.delete('s')
  writer.commit()
  expectRows(r.read().data, 10, 'still visible')
  reader.refresh()
  assert.is(reader.has('s'), false)
  throwsCode(() => r.read(), NotFoundError, 'TXA_NOT_FOUND')
  writer.close()
  reader.close()
})

test('a reader sees a shrink (and the zeros of a regrow) only after it moves on', () => {
  const { writer, w, reader, r } = setup()
  w.resize([3, 4])
  writer.commit()
  w.resize([10, 4])
  writer.commit()
  expectRows(r.read().data, 10, 'old snapshot')
  reader.refresh()
  const expected = rowsOf(0, 10)
  expected.fill(0, 12)
  assert.equal([...r.read().data], [...expected])
  writer.close()
  reader.close()
})

test('a handle\'s own uncommitted writes are invisible to other handles', () => {
  const { writer, w, reader, r } = setup()
  w.append(rowsOf(10, 1))
  w.write([2], Int32Array.of(5, 5, 5, 5))
  reader.refresh()
  expectRows(r.read().data, 10, 'other handle')
  assert.is(w.rows, 11)
  writer.abort()
  writer.close()
  reader.close()
})

test('refresh() with uncommitted changes is refused and keeps them', () => {
  const { writer, w, reader } = setup()
  w.write([0], Int32Array.of(1, 2, 3, 4))
  throwsCode(() => writer.refresh(), TransactionError, 'TXA_TRANSACTION')
  assert.is(writer.dirty, true)
  assert.equal([...w.read([0]).data], [1, 2, 3, 4])
  writer.close()
  reader.close()
})

test('a reader in this process is isolated from commits of another process', () => {
  const { dir, writer, reader, r } = setup()
  writer.close()
  expectRows(r.read().data, 10, 'before')
  const serial = reader.serial
  runChild('writer.child.ts', ['append', dir, 's', '10', '500'])
  assert.is(reader.serial, serial)
  assert.equal(r.shape, [10, 4])
  expectRows(r.read().data, 10, 'after the other process committed, before refresh')
  reader.refresh()
  assert.ok(reader.serial > serial)
  assert.equal(r.shape, [510, 4])
  expectRows(r.read().data, 510, 'after refresh')
  // and once more, moving by commit() this time
  runChild('writer.child.ts', ['append', dir, 's', '510', '7'])
  assert.is(r.rows, 510)
  reader.commit()
  expectRows(r.read().data, 517, 'after commit')
  reader.close()
})

test('a map grown by another process is adopted on the next snapshot', () => {
  const dir = tempDir()
  const store = open(dir, { mapSize: 1 << 20 }) // 1 MiB; the child opens with the 64 GiB default
  const a = store.create<'int32'>('s', { dtype: 'int32', shape: [0, 4], blockBytes: 65536 })
  a.append(rowsOf(0, 1))
  store.commit()
  runChild('writer.child.ts', ['append', dir, 's', '1', String(300_000)]) // ~4.8 MB
  expectRows(a.read().data, 1, 'old snapshot')
  store.refresh()
  assert.is(a.rows, 300_001)
  expectRows(a.read().data, 300_001, 'after refresh')
  a.append(rowsOf(300_001, 100_000)) // and this process can write past its initial map
  store.commit()
  expectRows(a.read().data, 400_001, 'after own commit')
  store.close()
})

test('an array deleted and re-created by another handle: the old handle is gone, the name opens the new one', () => {
  const { writer, reader, r } = setup()
  writer.delete('s')
  writer.create('s', { dtype: 'uint8', shape: [2] }).write(null, Uint8Array.of(8, 9))
  writer.commit()
  expectRows(r.read().data, 10, 'old snapshot still shows the old array')
  reader.refresh()
  throwsCode(() => r.read(), NotFoundError, 'TXA_NOT_FOUND')
  const fresh = reader.array('s')
  assert.is(fresh.dtype, 'uint8')
  assert.equal([...fresh.read().data], [8, 9])
  writer.close()
  reader.close()
})

test('a snapshot older than the pruned commit log still moves on correctly, and its writes conflict safely', () => {
  const { writer, w, reader, r } = setup()
  const other = writer.create<'int32'>('other', { dtype: 'int32', shape: [0, 4] })
  writer.commit()
  reader.refresh()
  const stale = reader.array('other', 'int32')
  stale.append(rowsOf(0, 1)) // reader's pending change, made on a soon very old snapshot
  // more commits than the log keeps (4096), changing shapes and blocks of 's'
  for (let i = 0; i < 4200; i++) {
    if (i % 1000 === 0) w.resize([10, 4])
    w.append(rowsOf(w.rows, 1))
    writer.commit({ sync: false })
  }
  // Nothing tells the old snapshot which arrays changed: a commit must conflict rather
  // than guess (even on an array nobody else touched), and the retry must see it all.
  const err = throwsCode(() => reader.commit(), ConflictError, 'TXA_CONFLICT')
  assert.match(err.message, 'older than the commit log reaches')
  assert.is(err.array, undefined, 'the log cannot tell which array or commit')
  assert.is(err.serial, undefined)
  reader.abort()
  assert.equal(r.shape, [w.rows, 4])
  assert.equal([...r.read([-1]).data], [...rowsOf(w.rows - 1, 1)])
  assert.is(stale.rows, 0)
  stale.append(rowsOf(0, 1))
  reader.commit()
  void other
  writer.refresh()
  assert.is(writer.array('other').rows, 1)
  writer.close()
  reader.close()
})

test('a reader with no changes follows shape changes across more commits than the log keeps', () => {
  const { writer, w, reader, r } = setup()
  for (let i = 0; i < 4200; i++) {
    w.append(rowsOf(w.rows, 1))
    writer.commit({ sync: false })
  }
  assert.is(r.rows, 10)
  reader.refresh()
  assert.is(r.rows, 4210)
  assert.equal([...r.read().data], [...rowsOf(0, 4210)])
  writer.close()
  reader.close()
})

test.run()
