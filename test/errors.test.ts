// Every failure is a TxarrayError subclass with a stable code, whether TypeScript or the
// native engine detects it.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as txarray from '../src/index'
import {
  AlreadyExistsError, ArgumentError, BoundsError, ClosedError, ConflictError, DTypeError, FormatError,
  NotFoundError, ShapeError, StorageError, TransactionError, TxarrayError, open, slice,
} from '../src/index'
import { runChild } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { mdbLoad } from './helpers/mdb-tools'
import { tempDir } from './helpers/tmp'

function fresh() {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'float32'>('a', { dtype: 'float32', shape: [4, 3] })
  store.commit()
  return { dir, store, a }
}

test('every error class carries its code, statically and on instances', () => {
  const expected: Record<string, string> = {
    NotFoundError: 'TXA_NOT_FOUND', AlreadyExistsError: 'TXA_EXISTS', DTypeError: 'TXA_DTYPE', ShapeError: 'TXA_SHAPE',
    BoundsError: 'TXA_BOUNDS', ConflictError: 'TXA_CONFLICT', ClosedError: 'TXA_CLOSED', FormatError: 'TXA_FORMAT',
    ArgumentError: 'TXA_ARGUMENT', StorageError: 'TXA_STORAGE', TooLargeError: 'TXA_TOO_LARGE', TransactionError: 'TXA_TRANSACTION',
    DiskFullError: 'TXA_DISK_FULL', CorruptionError: 'TXA_CORRUPT', ReadOnlyError: 'TXA_READ_ONLY',
    RemoteUnavailableError: 'TXA_REMOTE_UNAVAILABLE', CommitOutcomeUnknownError: 'TXA_COMMIT_UNKNOWN',
    CommitOutcomeForgottenError: 'TXA_COMMIT_UNKNOWN',
  }
  for (const [name, code] of Object.entries(expected)) {
    const cls = (txarray as unknown as Record<string, { code: string; new (m: string): TxarrayError }>)[name]
    assert.type(cls, 'function', name)
    assert.is(cls.code, code, name)
    const e = new cls('msg')
    assert.instance(e, TxarrayError)
    assert.instance(e, Error)
    assert.is(e.code, code)
    assert.is(e.name, name)
    assert.is(e.message, 'msg')
  }
})

test('TXA_NOT_FOUND: unknown names, deleted arrays', () => {
  const { store, a } = fresh()
  throwsCode(() => store.array('nope'), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => store.delete('nope'), NotFoundError, 'TXA_NOT_FOUND')
  store.delete('a')
  throwsCode(() => a.read(), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => a.write(null, 1), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => a.shape, NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => store.delete('a'), NotFoundError, 'TXA_NOT_FOUND')
  store.close()
})

test('TXA_EXISTS: create() of a taken name, committed or not', () => {
  const { store } = fresh()
  throwsCode(() => store.create('a', { dtype: 'int8', shape: [1] }), AlreadyExistsError, 'TXA_EXISTS')
  store.create('b', { dtype: 'int8', shape: [1] })
  throwsCode(() => store.create('b', { dtype: 'int8', shape: [1] }), AlreadyExistsError, 'TXA_EXISTS')
  store.close()
})

test('TXA_DTYPE: unknown dtypes and data of the wrong TypedArray', () => {
  const { store, a } = fresh()
  for (const dtype of ['float16', 'Float32', 'int', '', 5, null, undefined, 'bool']) {
    throwsCode(() => store.create('x', { dtype: dtype as never, shape: [1] }), DTypeError, 'TXA_DTYPE')
  }
  throwsCode(() => a.write(null, new Float64Array(12) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.write(null, new Int32Array(12) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.write(null, Array(12).fill(0) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.write(null, new DataView(new ArrayBuffer(48)) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.append(new Uint8Array(12) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.read(null, new Float64Array(12) as never), DTypeError, 'TXA_DTYPE')
  const big = store.create('big', { dtype: 'int64', shape: [2] })
  throwsCode(() => big.write(null, new BigUint64Array(2) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => big.write(null, new Float64Array(2) as never), DTypeError, 'TXA_DTYPE')
  store.close()
})

test('TXA_DTYPE: store.array(name, dtype) checks the dtype the caller expects, naming both', () => {
  const { store } = fresh()
  const a = store.array('a', 'float32')
  assert.is(a.dtype, 'float32')
  assert.instance(a.read().data, Float32Array)
  const err = throwsCode(() => store.array('a', 'float64'), DTypeError, 'TXA_DTYPE')
  assert.match(err.message, "array 'a' holds float32, not float64")
  throwsCode(() => store.array('a', 'half' as never), DTypeError, 'TXA_DTYPE')
  // without a dtype, any array
  assert.is(store.array('a').dtype, 'float32')
  // the check also holds for an array created in this transaction
  store.create('n', { dtype: 'int64', shape: [1] })
  throwsCode(() => store.array('n', 'uint64'), DTypeError, 'TXA_DTYPE')
  assert.is(store.array('n', 'int64').read().data[0], 0n)
  store.close()
})

test('TXA_SHAPE: bad shapes, wrong data lengths, partial rows, resizing another axis', () => {
  const { store, a } = fresh()
  const bad = [[], [-1], [1.5], [NaN], [Infinity], ['3'], 'shape', null, [2 ** 53], new Array(33).fill(1)]
  for (const shape of bad) {
    throwsCode(() => store.create('x', { dtype: 'int8', shape: shape as never }), ShapeError, 'TXA_SHAPE')
  }
  assert.is(store.has('x'), false)
  throwsCode(() => a.write(null, new Float32Array(11)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.write([0], new Float32Array(4)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.append(new Float32Array(4)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.append(new Float32Array(1)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.resize([4, 4]), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.resize([4]), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.read(null, new Float32Array(11)), ShapeError, 'TXA_SHAPE')
  assert.is(store.dirty, false)
  store.close()
})

test('TXA_BOUNDS: integer indices outside the array', () => {
  const { store, a } = fresh()
  throwsCode(() => a.read([4]), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.read([-5]), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.read([0, 3]), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.write([1, -4], 1), BoundsError, 'TXA_BOUNDS')
  const empty = store.create('e', { dtype: 'int8', shape: [0] })
  throwsCode(() => empty.read([0]), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => empty.read([-1]), BoundsError, 'TXA_BOUNDS')
  // slices clamp instead, as in Python
  assert.equal(a.read([slice(2, 100)]).shape, [2, 3])
  store.close()
})

test('TXA_CONFLICT: a commit racing another commit on the same block', () => {
  const { dir, store, a } = fresh()
  const other = open(dir)
  other.array('a', 'float32').write([0, 0], 1)
  other.commit()
  a.write([0, 1], 2)
  throwsCode(() => store.commit(), ConflictError, 'TXA_CONFLICT')
  other.close()
  store.close()
})

test('TXA_CLOSED: using a closed store or its arrays', () => {
  const { store, a } = fresh()
  store.close()
  throwsCode(() => store.list(), ClosedError, 'TXA_CLOSED')
  throwsCode(() => a.read(), ClosedError, 'TXA_CLOSED')
})

test('TXA_ARGUMENT: bad names', () => {
  const { store } = fresh()
  for (const name of ['', 5, null, undefined, {}, 'x'.repeat(256), 'é'.repeat(128)]) {
    throwsCode(() => store.create(name as never, { dtype: 'int8', shape: [1] }), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => store.array(name as never), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => store.has(name as never), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => store.delete(name as never), ArgumentError, 'TXA_ARGUMENT')
  }
  // the longest name allowed works, and so does any UTF-8
  store.create('x'.repeat(255), { dtype: 'int8', shape: [1] })
  store.create('température/ß/日本', { dtype: 'int8', shape: [1] })
  store.commit()
  assert.equal(store.list(), ['a', 'température/ß/日本', 'x'.repeat(255)].sort())
  store.close()
})

test('TXA_ARGUMENT: bad open() and create() options', () => {
  const dir = tempDir()
  throwsCode(() => open(''), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => open(5 as never), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => open(dir, 5 as never), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => open(dir, null as never), ArgumentError, 'TXA_ARGUMENT')
  for (const bad of [{ mapSize: -1 }, { mapSize: 0 }, { mapSize: 1.5 }, { mapSize: '1' }, { maxReaders: 0 }, { maxReaders: 2.5 }]) {
    throwsCode(() => open(dir, bad as never), ArgumentError, 'TXA_ARGUMENT')
  }
  const store = open(dir)
  throwsCode(() => store.create('x', null as never), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => store.create('x', undefined as never), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => store.create('x', { dtype: 'int8', shape: [1], attrs: [] as never }), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => store.create('x', { dtype: 'int8', shape: [1], attrs: null as never }), ArgumentError, 'TXA_ARGUMENT')
  assert.equal(store.list(), [])
  store.close()
})

test('TXA_ARGUMENT: blockBytes must be a power of two from 4096 to 64 MiB', () => {
  const { store } = fresh()
  for (const blockBytes of [0, 1, 1000, 2048, 4095, 5000, 65535, 2 ** 27, -4096, 4096.5, '4096', NaN]) {
    throwsCode(() => store.create('x', { dtype: 'int8', shape: [1], blockBytes: blockBytes as never }), ArgumentError, 'TXA_ARGUMENT')
  }
  for (const blockBytes of [4096, 8192, 2 ** 20, 2 ** 26]) {
    const x = store.create(`b${blockBytes}`, { dtype: 'int8', shape: [3], blockBytes })
    assert.is(x.blockBytes, blockBytes)
  }
  store.commit()
  store.close()
})

test('TXA_ARGUMENT: slice step 0, non-integer indices and bounds, wrong scalar types', () => {
  const { store, a } = fresh()
  throwsCode(() => slice(0, 2, 0), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => slice(0, 2.5), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => slice(NaN), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([0.5]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.write([1, 1.25], 1), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([{ kind: 'slice', start: 0, stop: 2, step: 0 } as never]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([0, 0, 0]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.setAttrs(null as never), ArgumentError, 'TXA_ARGUMENT')
  const big = store.create('big', { dtype: 'uint64', shape: [2] })
  throwsCode(() => big.write(null, 1 as never), ArgumentError, 'TXA_ARGUMENT')
  store.close()
})

test('TXA_TRANSACTION: nested transact, async function, refresh with pending changes', () => {
  const { store, a } = fresh()
  throwsCode(() => store.transact((s) => s.transact(() => 0)), TransactionError, 'TXA_TRANSACTION')
  throwsCode(() => store.transact(async () => 0), TransactionError, 'TXA_TRANSACTION')
  throwsCode(() => store.transact(() => Promise.resolve(1)), TransactionError, 'TXA_TRANSACTION')
  a.write([0, 0], 1)
  throwsCode(() => store.refresh(), TransactionError, 'TXA_TRANSACTION')
  store.close()
})

test('TXA_FORMAT: a store stamped with another format version, or not a txarray store', () => {
  const { dir, store } = fresh()
  store.close()
  runChild('writer.child.ts', ['format', dir, JSON.stringify({ name: 'txarray', version: 4 })])
  const e = throwsCode(() => open(dir), FormatError, 'TXA_FORMAT')
  assert.match(e.message, /version 4/)
  assert.match(e.message, /newer txarray/)
  for (const older of [1, 2]) {
    // format 2 stored block values without a header; 1 also lacked the record header
    runChild('writer.child.ts', ['format', dir, JSON.stringify({ name: 'txarray', version: older })])
    const old = throwsCode(() => open(dir), FormatError, 'TXA_FORMAT')
    assert.match(old.message, new RegExp(`version ${older} is not supported`), 'older formats too')
    assert.match(old.message, /To convert it, open it with the txarray release that wrote it/, 'says how to convert')
  }
  throwsCode(() => open(dir), FormatError, 'TXA_FORMAT') // a failed open leaves nothing half open
  runChild('writer.child.ts', ['format', dir, JSON.stringify({ name: 'something-else', version: 1 })])
  throwsCode(() => open(dir), FormatError, 'TXA_FORMAT')
  runChild('writer.child.ts', ['format', dir, JSON.stringify('just a string')])
  throwsCode(() => open(dir), FormatError, 'TXA_FORMAT')
  // with the right stamp back, the data is all there
  runChild('writer.child.ts', ['format', dir, JSON.stringify({ name: 'txarray', version: 3 })])
  const again = open(dir)
  assert.equal(again.array('a').shape, [4, 3])
  again.close()
})

test('TXA_FORMAT: another program\'s LMDB environment is refused and left exactly as it was', () => {
  const dir = tempDir()
  mdbLoad(dir, [['hello', 'world']])
  const before = fs.readFileSync(path.join(dir, 'data.mdb'))
  const e = throwsCode(() => open(dir), FormatError, 'TXA_FORMAT')
  assert.match(e.message, /not a txarray store/)
  assert.ok(before.equals(fs.readFileSync(path.join(dir, 'data.mdb'))), 'not one byte written')
})

test('TXA_FORMAT: a directory whose data.mdb is not an LMDB file', () => {
  const dir = tempDir()
  fs.writeFileSync(path.join(dir, 'data.mdb'), Buffer.alloc(16384, 0x5a))
  throwsCode(() => open(dir), FormatError, 'TXA_FORMAT')
})

test('TXA_STORAGE: a path that is a file, not a directory', () => {
  const file = path.join(tempDir(), 'file')
  fs.writeFileSync(file, 'x')
  throwsCode(() => open(file), StorageError, 'TXA_STORAGE')
})

test.run()
