// Every stored block carries a CRC32C of its bytes. read() and take() check it when asked
// (open option verifyChecksums, or per call) and throw CorruptionError naming the array
// and the block; without verification a damaged block is copied as it is.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, CorruptionError, open, slice } from '../src/index'
import { copyStore, flipAfterPattern } from './helpers/damage'
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

test('verifyChecksums must be a boolean', () => {
  assert.throws(() => open(tempDir(), { verifyChecksums: 'yes' as unknown as boolean }), (e: unknown) => e instanceof ArgumentError)
  const store = open(tempDir())
  const a = store.create<'int32'>('x', { dtype: 'int32', shape: [4] })
  assert.throws(() => a.read(null, undefined, { verifyChecksums: 1 as unknown as boolean }), (e: unknown) => e instanceof ArgumentError)
  assert.throws(() => a.take([0], 1, undefined, null as unknown as {}), (e: unknown) => e instanceof ArgumentError)
  store.close()
})

test.run()
