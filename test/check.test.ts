// store.check() walks a snapshot of the whole store: format stamp, records, every block
// (header, checksum, place, size, index) and the cross-references between blocks,
// records and the commit log. It finds damage done behind the store's back.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorruptionError, open, slice, type CheckReport } from '../src/index'
import { copyStore, flipAfterPattern } from './helpers/damage'
import { mdbEntries, mdbPut } from './helpers/mdb-tools'
import { tempDir } from './helpers/tmp'

function kinds(report: CheckReport): string[] {
  return report.problems.map((p) => `${p.array}:${p.block}:${p.kind}`).sort()
}

/** A store with a few arrays in several commits; returns its directory, closed. */
function healthy(): string {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const m = store.create<'float64'>('m', { dtype: 'float64', shape: [0, 16] })
  for (let c = 0; c < 5; c++) {
    m.append(Float64Array.from({ length: 300 * 16 }, (_, k) => c * 1e6 + k + 1))
    store.commit()
  }
  m.write([42, 3], -7) // an overwritten block
  const s = store.create<'uint8'>('sparse', { dtype: 'uint8', shape: [1 << 20], blockBytes: 4096 })
  s.write([500_000], 9)
  s.write([4095], 1)
  const gone = store.create<'int32'>('gone', { dtype: 'int32', shape: [10_000] })
  gone.write(null, 3)
  store.commit()
  store.delete('gone')
  m.resize([1200, 16]) // shrink: blocks past the end are deleted
  store.commit()
  store.close()
  return dir
}

test('a healthy store checks clean and is counted', () => {
  const dir = healthy()
  const store = open(dir)
  const report = store.check()
  assert.equal(report.problems, [])
  assert.ok(report.ok)
  assert.is(report.arrays, 2)
  // m: 1200 rows x 128 bytes = 150 KiB in 64 KiB blocks = 3 blocks; sparse: 2 blocks
  assert.is(report.blocks, 3 + 2)
  assert.is(report.bytes, 1200 * 128 + (500_000 % 4096) + 1 + 4096)
  store.close()
})

test('flipped bytes in a block of a copy are found, named by array and block', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [40_000] }) // 5 blocks
  const data = Float64Array.from({ length: 40_000 }, (_, k) => k + 0.5)
  data[20_000] = 98765.125 // block 2
  a.write(null, data)
  store.commit()
  store.close()
  const copy = copyStore(dir)
  flipAfterPattern(copy, Buffer.from(Float64Array.of(98765.125).buffer), 3, 0x80)
  const damaged = open(copy)
  const report = damaged.check()
  assert.not.ok(report.ok)
  assert.equal(kinds(report), ['a:2:checksum'])
  assert.match(report.problems[0].message, /checksum/)
  assert.throws(() => damaged.array('a').read([slice(19_990, 20_010)], undefined, { verifyChecksums: true }),
    (e: unknown) => e instanceof CorruptionError)
  damaged.close()
  const original = open(dir)
  assert.ok(original.check().ok, 'the original is untouched')
  original.close()
})

test('a block of a deleted or unknown array, a block past the end and a misplaced block are reported', () => {
  const dir = healthy()
  const blocks = mdbEntries(dir, 'blocks')
  const [key, value] = blocks[0]
  const id = key.readBigUInt64BE(0)
  const orphanKey = Buffer.alloc(16)
  orphanKey.writeBigUInt64BE(999n, 0)
  const pastEnd = Buffer.from(key)
  pastEnd.writeBigUInt64BE(5000n, 8)
  mdbPut(dir, 'blocks', [[orphanKey, value], [pastEnd, value]])
  const store = open(dir)
  const found = kinds(store.check())
  const name = store.list().find((n) => n === 'm' || n === 'sparse')
  assert.ok(name)
  assert.ok(found.includes('#999:0:orphan'), found.join(', '))
  assert.ok(found.includes('#999:0:misplaced'), 'its header names the array it was copied from')
  const arrayOfKey = found.find((k) => k.endsWith(':5000:beyond-end'))
  assert.ok(arrayOfKey, found.join(', '))
  assert.ok(found.some((k) => k.endsWith(':5000:misplaced')))
  assert.ok(id > 0n)
  store.close()
})

test('a value that is not a block, and a record whose body is damaged, are reported', () => {
  const dir = healthy()
  const [[key]] = mdbEntries(dir, 'blocks')
  const records = mdbEntries(dir, 'arrays')
  const [recordKey, recordValue] = records[0]
  const badRecord = Buffer.concat([recordValue.subarray(0, 32), Buffer.from([0xc1, 0xc1, 0xc1])]) // msgpack: never used
  mdbPut(dir, 'blocks', [[key, Buffer.from('raw bytes of an older format')]])
  mdbPut(dir, 'arrays', [[recordKey, badRecord]])
  const store = open(dir)
  const report = store.check()
  const found = kinds(report)
  assert.ok(found.some((k) => k.endsWith(':0:block-header')), found.join(', '))
  assert.ok(found.includes(`${recordKey.toString()}:null:record`), found.join(', '))
  store.close()
})

test('check() looks at the committed snapshot, not at uncommitted changes', () => {
  const dir = healthy()
  const store = open(dir)
  store.array('m', 'float64').write([0, 0], 5)
  store.create('fresh', { dtype: 'uint8', shape: [10] })
  const report = store.check()
  assert.ok(report.ok)
  assert.is(report.arrays, 2)
  store.close()
})

test.run()
