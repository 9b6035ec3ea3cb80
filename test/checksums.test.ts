// Every stored block carries a CRC32C of its bytes. read() and take() check it when asked
// (open option verifyChecksums, or per call) and throw CorruptionError naming the array
// and the block; without verification a damaged block is copied as it is.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, CorruptionError, open, slice } from '../src/index'
import { copyStore, flipAfterEveryPattern, flipAfterPattern } from './helpers/damage'
import { tempDir } from './helpers/tmp'

const ROWS = 4096
const COLS = 16 // float64: 128 bytes per row, 512 rows per 64 KiB block, 8 blocks

function values(): Float64Array {
  return Float64Array.from({ length: ROWS * COLS }, (_, k) => k + 0.25)
}

/** A closed store holding 'm' (float64 [4096, 16]) whose element [1300, 5] is 1234567.5. */
function damagedCopy(): { dir: string; copy: string } {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'float64'>('m', { dtype: 'float64', shape: [ROWS, COLS] })
  const data = values()
  data[1300 * COLS + 5] = 1234567.5 // in block 2 (rows 1024..1535)
  a.write(null, data)
  store.commit()
  store.close()
  const copy = copyStore(dir)
  flipAfterPattern(copy, Buffer.from(Float64Array.of(1234567.5).buffer), 7, 0x40) // the sign/exponent byte
  return { dir, copy }
}

test('verified reads of healthy data equal unverified ones: full, partial, sparse and dirty blocks', () => {
  const store = open(tempDir(), { verifyChecksums: true })
  const a = store.create<'float64'>('m', { dtype: 'float64', shape: [ROWS, COLS] })
  const data = values()
  a.write(null, data)
  const s = store.create<'uint8'>('sparse', { dtype: 'uint8', shape: [1 << 20], blockBytes: 4096 })
  s.write([777_777], 5)
  store.commit()
  a.append(new Float64Array(3 * COLS).fill(2)) // a partial tail block, then dirty rows
  assert.equal(a.read([slice(1000, 1010)]).data, data.subarray(1000 * COLS, 1010 * COLS))
  assert.equal(a.read([slice(ROWS - 2, ROWS + 3)], undefined, { verifyChecksums: false }).data,
    a.read([slice(ROWS - 2, ROWS + 3)]).data)
  const windows = a.take([0, 511, 4000, ROWS], 3).data
  assert.equal(windows.subarray(0, 3 * COLS), data.subarray(0, 3 * COLS))
  assert.equal([...windows.subarray(9 * COLS)], new Array(3 * COLS).fill(2))
  assert.is(s.read([slice(777_770, 777_780)]).data[7], 5)
  assert.is(s.read([slice(0, 10)]).data.reduce((x, y) => x + y, 0), 0, 'a block never stored reads as zeros')
  store.close()
})

test('flipped bytes in a block: verified read() and take() throw CorruptionError naming array and block', () => {
  const { copy } = damagedCopy()
  const store = open(copy, { verifyChecksums: true })
  const a = store.array('m', 'float64')
  assert.throws(() => a.read([slice(1200, 1400)]), (err: unknown) => err instanceof CorruptionError)
  let caught: unknown
  try {
    a.read([1300, 5])
  } catch (err) {
    caught = err
  }
  assert.instance(caught, CorruptionError)
  assert.is((caught as CorruptionError).code, 'TXA_CORRUPT')
  assert.match((caught as Error).message, /array 'm' block 2/)
  assert.throws(() => a.take([1500], 40), (err: unknown) => err instanceof CorruptionError && /block 2/.test(err.message))
  // other blocks still read, verified
  assert.equal(a.read([slice(0, 4)]).data, values().subarray(0, 4 * COLS))
  assert.equal(a.take([3000], 2).data, values().subarray(3000 * COLS, 3002 * COLS))
  store.close()
})

test('without verification a damaged block is copied as stored; the per-call option overrides the store', () => {
  const { dir, copy } = damagedCopy()
  const plain = open(copy)
  const a = plain.array('m', 'float64')
  const got = a.read([1300, 5]).data[0]
  assert.is.not(got, 1234567.5, 'the flipped byte shows')
  assert.throws(() => a.read([1300, 5], undefined, { verifyChecksums: true }), (err: unknown) => err instanceof CorruptionError)
  assert.throws(() => a.take([1300], 1, undefined, { verifyChecksums: true }), (err: unknown) => err instanceof CorruptionError)
  plain.close()
  const verifying = open(copy, { verifyChecksums: true })
  assert.is(verifying.array('m', 'float64').read([1300, 5], undefined, { verifyChecksums: false }).data[0], got)
  verifying.close()
  const original = open(dir, { verifyChecksums: true })
  assert.is(original.array('m', 'float64').read([1300, 5]).data[0], 1234567.5, 'the original is intact')
  original.close()
})

test('a block overwritten in this transaction is not verified: its bytes come from the transaction', () => {
  const { copy } = damagedCopy()
  const store = open(copy, { verifyChecksums: true })
  const a = store.array('m', 'float64')
  a.write([slice(1024, 1536)], 9) // all of block 2
  assert.is(a.read([1300, 5]).data[0], 9)
  store.commit() // block 2 is rewritten whole: healthy again
  assert.is(a.read([1300, 5]).data[0], 9)
  store.close()
})

test('store.stats().checksumSeconds counts the time commits spend checksumming the blocks they write', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  assert.is(store.stats().checksumSeconds, 0, 'nothing committed yet')
  const a = store.create<'float64'>('m', { dtype: 'float64', shape: [ROWS, COLS] })
  a.write(null, values())
  store.commit()
  const afterBlocks = store.stats().checksumSeconds
  assert.ok(afterBlocks > 0, `8 blocks written: ${afterBlocks} s`)
  assert.ok(afterBlocks < 1, `8 blocks of 64 KiB take far less than a second: ${afterBlocks} s`)
  a.setAttrs({ note: 'no block changes' })
  store.commit()
  assert.is(store.stats().checksumSeconds, afterBlocks, 'a commit that writes no block adds nothing')
  store.close()
})

/** Bytes of piece `k` of a stream: non-zero, with a run of zeros inside and, every third piece, at its end. */
function piece(k: number, length: number): Uint8Array {
  const bytes = Uint8Array.from({ length }, (_, i) => ((k * 31 + i * 7) % 251) + 1)
  bytes.fill(0, length >> 2, length >> 1)
  if (k % 3 === 2) bytes.fill(0, length - Math.min(length, 13))
  return bytes
}

test('a block appended in pieces across many commits verifies after each, and each commit checksums only what it added', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false, verifyChecksums: true })
  const a = store.create<'uint8'>('s', { dtype: 'uint8', shape: [0], blockBytes: 8192 })
  store.commit()
  const expected: number[] = []
  for (let k = 0; k < 60; k++) {
    const bytes = piece(k, 1 + ((k * 397) % 1500))
    const before = store.stats().checksumBytes
    a.append(bytes)
    store.commit()
    expected.push(...bytes)
    const read = store.stats().checksumBytes - before
    // Only the bytes past the data the handle's last commit stored are read: this piece,
    // and the zeros the last piece ended with (not stored: trailing zeros are trimmed).
    const zerosBefore = k % 3 === 0 && k > 0 ? 13 : 0
    assert.ok(read <= bytes.length + zerosBefore, `commit ${k} appended ${bytes.length} bytes and read ${read} for checksums`)
    const nonZero = bytes.filter((b) => b !== 0).length
    assert.ok(read >= nonZero, `commit ${k} stored ${nonZero} non-zero bytes and read ${read} for checksums`)
    if (k % 7 === 0) assert.equal([...a.read().data], expected, `verified read after commit ${k}`)
  }
  assert.ok(expected.length > 3 * 8192, 'the pieces span several blocks')
  assert.equal(store.check().problems, [])
  store.close()
  const again = open(dir, { verifyChecksums: true })
  assert.equal([...again.array('s', 'uint8').read().data], expected)
  assert.ok(again.check().ok)
  again.close()
})

test('a partly filled block rewritten in the middle, or cut by a shrink, between appends verifies', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false, verifyChecksums: true })
  const a = store.create<'uint8'>('s', { dtype: 'uint8', shape: [0], blockBytes: 4096 })
  const expected: number[] = []
  const append = (bytes: Uint8Array) => {
    a.append(bytes)
    expected.push(...bytes)
  }
  append(piece(0, 1000))
  store.commit()
  append(piece(1, 500))
  store.commit()
  // a write below the committed end of the partly filled block, and an append, in one transaction
  a.write([slice(200, 210)], 77)
  expected.fill(77, 200, 210)
  append(piece(2, 300))
  store.commit()
  assert.equal([...a.read().data], expected)
  append(piece(3, 400))
  store.commit()
  // a shrink into the committed bytes, then an append past the cut
  a.resize([1700])
  expected.length = 1700
  append(piece(4, 600))
  store.commit()
  append(piece(5, 100))
  store.commit()
  // zeros written over the block's last bytes: its data gets shorter
  a.write([slice(expected.length - 50, expected.length)], 0)
  expected.fill(0, expected.length - 50)
  store.commit()
  append(piece(6, 60))
  store.commit()
  assert.equal([...a.read().data], expected)
  assert.equal(store.check().problems, [])
  // another handle's commit to the same block: this handle starts over from what it reads
  const other = open(dir, { sync: false })
  other.array('s', 'uint8').write([slice(10, 20)], 5)
  other.commit()
  other.close()
  store.refresh()
  expected.fill(5, 10, 20)
  append(piece(7, 70))
  store.commit()
  assert.equal([...a.read().data], expected)
  assert.equal(store.check().problems, [])
  store.close()
})

test('flipped bytes in a block committed piece by piece are found by verified reads and check()', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'float64'>('s', { dtype: 'float64', shape: [0] })
  a.append(Float64Array.of(1, 2, 1234567.5, 3))
  store.commit()
  for (let k = 0; k < 20; k++) {
    a.append(Float64Array.from({ length: 100 }, (_, i) => k * 100 + i + 10))
    store.commit()
  }
  store.close()
  const copy = copyStore(dir)
  // the block's current value, and its older versions in free pages
  assert.ok(flipAfterEveryPattern(copy, Buffer.from(Float64Array.of(1234567.5).buffer), 7, 0x40) >= 1)
  const damaged = open(copy, { verifyChecksums: true })
  assert.throws(() => damaged.array('s', 'float64').read([slice(0, 4)]), (err: unknown) => err instanceof CorruptionError)
  const report = damaged.check()
  assert.not.ok(report.ok)
  assert.ok(report.problems.some((p) => p.kind === 'checksum' && p.block === 0), JSON.stringify(report.problems))
  damaged.close()
})

test('verifyChecksums must be a boolean', () => {
  assert.throws(() => open(tempDir(), { verifyChecksums: 'yes' as unknown as boolean }), (e: unknown) => e instanceof ArgumentError)
  const store = open(tempDir())
  const a = store.create<'int32'>('x', { dtype: 'int32', shape: [4] })
  assert.throws(() => a.read(null, undefined, { verifyChecksums: 1 as unknown as boolean }), (e: unknown) => e instanceof ArgumentError)
  assert.throws(() => a.take([0], 1, undefined, null as unknown as {}), (e: unknown) => e instanceof ArgumentError)
  store.close()
})

test.run()
