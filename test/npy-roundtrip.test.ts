// .npy import and export round trips: every dtype, several shapes, format versions 1.0,
// 2.0 and 3.0, little- and big-endian files, C and Fortran order, files read and
// written in chunks far smaller than the data; exported files are byte for byte what
// numpy writes for the same array.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type DType, NpyFormatError, dtypes, open, readNpyHeader, slice } from '../src/index'
import { sameBytes } from './helpers/bytes'
import { throwsCode } from './helpers/expect'
import { CODE, ITEM, dictText, npyFile, swapped, toFortran } from './helpers/npy'
import { tsxRegister } from './helpers/child'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

const SHAPES = [[7], [3, 5], [2, 3, 4], [0, 4], [4, 0], [1, 1, 1, 1], [5, 1, 3]]

function contents(dtype: DType, shape: number[], seed: number): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1)
  return new Rng(seed).bytes(n * ITEM[dtype])
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

test('every dtype and shape imports from v1/v2/v3, little/big-endian, C/Fortran order, in tiny chunks', () => {
  const dir = tempDir()
  let seed = 1
  let cases = 0
  let total = 0
  for (const dtype of dtypes) {
    // one store per dtype: each open array holds an address-space reservation
    const store = open(path.join(dir, dtype), { sync: false })
    cases = 0
    for (const shape of SHAPES) {
      for (const version of [1, 2, 3]) {
        for (const bigEndian of [false, true]) {
          for (const fortran of [false, true]) {
            const data = contents(dtype, shape, seed++)
            let fileData = fortran ? toFortran(data, shape, ITEM[dtype]) : data
            if (bigEndian) fileData = swapped(fileData, ITEM[dtype])
            const order = ITEM[dtype] === 1 ? '|' : bigEndian ? '>' : '<'
            const file = path.join(dir, `in-${dtype}-${cases}.npy`)
            fs.writeFileSync(file, npyFile(dictText(order + CODE[dtype], shape, fortran), fileData, version))
            const name = `a${cases++}`
            const r = store.importNpy(name, file, { chunkBytes: 8, commitBytes: 24 })
            assert.equal(r.shape, shape)
            assert.is(r.dtype, dtype)
            assert.is(r.version, `${version}.0`)
            const a = store.array(name)
            assert.equal(a.shape, shape, `${name} shape`)
            assert.is(a.dtype, dtype)
            sameBytes(a.read().data, data, `${dtype} ${JSON.stringify(shape)} v${version} ${order} ${fortran ? 'F' : 'C'}`)
          }
        }
      }
    }
    store.close()
    // the imports committed: a fresh handle sees them
    const other = open(path.join(dir, dtype))
    assert.is(other.list().length, cases)
    other.close()
    total += cases
  }
  assert.is(total, 840)
})

test('export writes the exact bytes numpy writes: header padded to 64, data in C order, little-endian', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'), { sync: false })
  let seed = 100
  for (const dtype of dtypes) {
    for (const shape of SHAPES) {
      const data = contents(dtype, shape, seed++)
      const a = store.create(`x${seed}`, { dtype, shape, blockBytes: 4096 })
      if (data.length > 0) a.write(null, new (a.read().data.constructor as new (b: ArrayBuffer) => never)(data.slice().buffer))
      const file = path.join(dir, `out-${seed}.npy`)
      const r = a.exportNpy(file, { chunkBytes: 3 })
      assert.equal(r.shape, shape)
      const expected = npyFile(dictText((ITEM[dtype] === 1 ? '|' : '<') + CODE[dtype], shape), data)
      sameBytes(fs.readFileSync(file), expected, `${dtype} ${JSON.stringify(shape)}`)
      const h = readNpyHeader(file)
      assert.is(h.dataOffset % 64, 0)
    }
  }
  store.close()
})

test('export of a selection: indexes drop axes, slices step (negative too), C order out', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'))
  const a = store.create<'int32'>('cube', { dtype: 'int32', shape: [6, 5, 4], blockBytes: 4096 })
  const all = Int32Array.from({ length: 120 }, (_, i) => i)
  a.write(null, all)
  const file = path.join(dir, 'sel.npy')
  for (const [selection, chunkBytes] of [
    [[slice(1, 5), 2, slice(null, null, -1)], 4],
    [[3], 8],
    [[slice(null, null, 2), slice(1, 4), slice(0, 4, 3)], 12],
    [[-1, -1, -1], 4],
    [[slice(2, 2)], 4],
  ] as const) {
    if (selection.every((x) => typeof x === 'number') && selection.length === 3) {
      // every axis indexed: a 0-d .npy, shape ()
      a.exportNpy(file, { selection })
      assert.equal(readNpyHeader(file).shape, [])
      assert.is(fs.readFileSync(file).readInt32LE(readNpyHeader(file).dataOffset), 119)
      continue
    }
    const expected = a.read(selection)
    const r = a.exportNpy(file, { selection, chunkBytes })
    assert.equal(r.shape, expected.shape)
    const h = readNpyHeader(file)
    assert.equal(h.shape, expected.shape)
    sameBytes(fs.readFileSync(file).subarray(h.dataOffset), bytesOf(expected.data), JSON.stringify(selection))
  }
  store.close()
})

test('export sees the transaction: uncommitted writes are in the file, the store is unchanged', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'))
  const a = store.create<'float64'>('x', { dtype: 'float64', shape: [4] })
  a.write(null, Float64Array.of(1, 2, 3, 4))
  const file = path.join(dir, 'x.npy')
  a.exportNpy(file)
  assert.ok(store.dirty)
  const back = open(path.join(dir, 'store2'))
  back.importNpy('y', file)
  assert.equal(Array.from(back.array('y', 'float64').read().data), [1, 2, 3, 4])
  back.close()
  store.close()
})

test('a file written by exportNpy imports back identically; importNpy keeps blockBytes and attrs', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'))
  const a = store.create<'uint16'>('src', { dtype: 'uint16', shape: [1000, 3] })
  a.write(null, Uint16Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xffff))
  store.commit()
  const file = path.join(dir, 'src.npy')
  a.exportNpy(file, { chunkBytes: 1000 })
  const r = store.importNpy('dst', file, { blockBytes: 4096, attrs: { from: 'src.npy' }, chunkBytes: 600, commitBytes: 1200 })
  assert.ok(r.commits > 3, `commits in batches (${r.commits})`)
  const b = store.array('dst')
  assert.is(b.blockBytes, 4096)
  assert.equal(b.attrs, { from: 'src.npy' })
  sameBytes(b.read().data, a.read().data, 'round trip')
  store.close()
})

test('importNpy refuses an existing name, a dirty transaction and bad options, leaving the store as it was', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'))
  const file = path.join(dir, 'x.npy')
  fs.writeFileSync(file, npyFile(dictText('<i4', [2]), new Uint8Array(8)))
  store.importNpy('x', file)
  throwsCode(() => store.importNpy('x', file), (require('../src/index') as typeof import('../src/index')).AlreadyExistsError, 'TXA_EXISTS')
  store.create('pending', { dtype: 'int8', shape: [1] })
  throwsCode(() => store.importNpy('y', file), (require('../src/index') as typeof import('../src/index')).TransactionError, 'TXA_TRANSACTION')
  store.abort()
  throwsCode(() => store.importNpy('y', file, { chunkBytes: 0 }), (require('../src/index') as typeof import('../src/index')).ArgumentError, 'TXA_ARGUMENT')
  assert.throws(() => store.importNpy('y', path.join(dir, 'missing.npy')), /ENOENT/)
  assert.equal(store.list(), ['x'])
})

test('a failed import deletes the array it created, committed batches included', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'))
  const file = path.join(dir, 'x.npy')
  fs.writeFileSync(file, npyFile(dictText('<f8', [100, 2]), new Uint8Array(1600)))
  let calls = 0
  assert.throws(() => store.importNpy('x', file, {
    chunkBytes: 160, commitBytes: 160,
    onProgress: () => { if (++calls === 5) throw new Error('stop here') },
  }), /stop here/)
  assert.ok(calls === 5)
  assert.not.ok(store.has('x'))
  const other = open(path.join(dir, 'store'))
  assert.not.ok(other.has('x'), 'no other handle sees it either')
  other.close()
  store.close()
})

test('Fortran-order rows over the transposition limit are refused with TXA_NPY', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'))
  const file = path.join(dir, 'wide.npy')
  // 2 rows of 9 Mi uint8 would be 18 MiB: the header is checked against the file first, so
  // the data must exist; a sparse file costs nothing
  const fd = fs.openSync(file, 'w')
  const head = npyFile(dictText('|u1', [2, 65 * 2 ** 20], true))
  fs.writeSync(fd, head)
  fs.ftruncateSync(fd, head.length + 2 * 65 * 2 ** 20)
  fs.closeSync(fd)
  throwsCode(() => store.importNpy('wide', file, { chunkBytes: 1024 }), NpyFormatError, 'TXA_NPY')
  assert.not.ok(store.has('wide'))
  store.close()
})

test('a reader of a file another process appends to never sees a header claiming rows the file lacks', async () => {
  const file = path.join(tempDir(), 'growing.npy')
  const child = spawn(process.execPath, ['-r', tsxRegister, '-e', `
const { NpyWriter } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'index.ts'))})
const w = NpyWriter.create(${JSON.stringify(file)}, { dtype: 'int32', shape: [0, 1024] })
for (let i = 0; i < 3000; i++) w.append(new Int32Array(1024).fill(i))
w.close()
`], { stdio: 'inherit' })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  let running = true
  void exited.then(() => (running = false))
  let headers = 0
  const claimedMissingRows: string[] = []
  while (running) {
    try {
      readNpyHeader(file)
      headers++
    } catch (e) {
      // rows written before their header shows them are bytes after the data: allowed
      const message = (e as Error).message
      if (/truncated/.test(message)) claimedMissingRows.push(message)
    }
    await new Promise((r) => setImmediate(r))
  }
  assert.is(await exited, 0)
  assert.equal(claimedMissingRows, [])
  assert.ok(headers > 0)
  assert.equal(readNpyHeader(file).shape, [3000, 1024])
})

test.run()
