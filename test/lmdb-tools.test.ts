// The store is a standard LMDB environment: mdb_stat and mdb_dump, built from the C
// sources bundled in the lmdb package, read its sub-databases and entries.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { unpack } from 'msgpackr'
import { open } from '../src/index'
import { crc32c, expectedChecksum, parseBlockValue } from './helpers/block-value'
import { mdbTool } from './helpers/mdb-tools'
import { tempDir } from './helpers/tmp'

function tool(name: 'mdb_stat' | 'mdb_dump', args: string[]): string {
  return mdbTool(name, args)
}

/** mdb_stat -a: entry count per database ("Main DB" holds the sub-database names). */
function entries(dir: string): Record<string, number> {
  const out: Record<string, number> = {}
  let current = ''
  for (const line of tool('mdb_stat', ['-a', dir]).split('\n')) {
    const status = /^Status of (.+)$/.exec(line)
    if (status) current = status[1]
    const n = /^\s+Entries: (\d+)$/.exec(line)
    if (n) out[current] = Number(n[1])
  }
  return out
}

/** mdb_dump -s db: the key/value pairs, as hex strings. */
function dump(dir: string, db: string): Array<[string, string]> {
  const lines = tool('mdb_dump', ['-s', db, dir]).split('\n')
  const start = lines.indexOf('HEADER=END')
  const end = lines.indexOf('DATA=END')
  assert.ok(start >= 0 && end > start, 'mdb_dump output has a header and data')
  const data = lines.slice(start + 1, end).map((l) => l.trim())
  const pairs: Array<[string, string]> = []
  for (let i = 0; i < data.length; i += 2) pairs.push([data[i], data[i + 1]])
  return pairs
}

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex')
const u64be = (n: number) => n.toString(16).padStart(16, '0')

test('mdb_stat lists the sub-databases meta, arrays, blocks, log and segments with the expected entry counts', () => {
  const dir = tempDir()
  const store = open(dir)
  const small = store.create('small', { dtype: 'int32', shape: [3], blockBytes: 4096 })
  small.write(null, Int32Array.of(1, 2, 3))
  const full = store.create('full', { dtype: 'float64', shape: [2048], blockBytes: 4096 }) // 4 blocks
  full.write(null, Float64Array.from({ length: 2048 }, (_, k) => k + 1))
  const sparse = store.create('sparse', { dtype: 'uint8', shape: [1_000_000], blockBytes: 4096 }) // 245 blocks
  sparse.write([500_000], 9) // only block 122 exists
  store.commit()
  const before = entries(dir)
  assert.equal(Object.keys(before).sort(), ['Main DB', 'arrays', 'blocks', 'log', 'meta', 'segments'])
  assert.is(before['Main DB'], 5)
  assert.is(before.segments, 0, 'no named segments')
  assert.is(before.arrays, 3)
  assert.is(before.blocks, 1 + 4 + 1)
  assert.ok(before.meta >= 1, 'meta holds at least the format stamp')
  assert.is(before.log, 1, 'one log entry per commit (creating the store writes none)')
  // changes show up in the counts
  store.delete('full')
  sparse.resize([0])
  store.commit()
  const after = entries(dir)
  assert.is(after.arrays, 2)
  assert.is(after.blocks, 1)
  assert.is(after.log, 2)
  store.close()
})

test('the independent CRC32C gives the standard check value', () => {
  assert.is(crc32c(Buffer.from('123456789')), 0xe3069283)
})

test('mdb_dump shows the documented key layout and little-endian block bytes', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create('a', { dtype: 'int32', shape: [3], blockBytes: 4096 })
  a.write(null, Int32Array.of(1, 2, -1))
  const b = store.create('b', { dtype: 'uint16', shape: [4096], blockBytes: 4096 })
  b.write([2048 + 1], 0xabcd) // block 1, second element
  store.commit()
  store.close()
  const arrays = dump(dir, 'arrays')
  assert.equal(arrays.map(([k]) => k), [hex('a'), hex('b')])
  // arrays value: u64le id, serial, rows, rowBytes, then the msgpack body
  const idOf = (v: string) => Number(Buffer.from(v, 'hex').readBigUInt64LE(0))
  const headerA = Buffer.from(arrays[0][1], 'hex')
  assert.is(headerA.readBigUInt64LE(16), 3n, 'rows')
  assert.is(headerA.readBigUInt64LE(24), 4n, 'rowBytes of int32 [3]')
  const idA = idOf(arrays[0][1])
  const idB = idOf(arrays[1][1])
  assert.ok(idA > 0 && idB > 0 && idA !== idB)
  const body = unpack(Buffer.from(arrays[0][1], 'hex').subarray(32))
  assert.is(body.dtype, 'int32')
  assert.equal(body.shape, [3])
  assert.is(body.blockBytes, 4096)
  const blocks = dump(dir, 'blocks')
  // key: u64be array id + u64be block index
  assert.equal(blocks.map(([k]) => k), [u64be(idA) + u64be(0), u64be(idB) + u64be(1)].sort())
  const expected = new Map([
    [u64be(idA) + u64be(0), { id: idA, index: 0, data: '01000000' + '02000000' + 'ffffffff' }],
    [u64be(idB) + u64be(1), { id: idB, index: 1, data: '0000' + 'cdab' }],
  ])
  for (const [key, hexValue] of blocks) {
    // value: a header page (header, then zeros) and the data, trailing zeros trimmed, then
    // zero-filled to a whole page
    const want = expected.get(key)!
    const value = Buffer.from(hexValue, 'hex')
    const v = parseBlockValue(value)
    const pageSize = v.dataOffset + 16
    assert.ok(pageSize >= 4096 && (pageSize & (pageSize - 1)) === 0, `page size ${pageSize}`)
    assert.is(v.magic, 'TXAB')
    assert.is(v.version, 1)
    assert.is(v.blockBytes, 4096)
    assert.is(v.dataLength, want.data.length / 2)
    assert.is(v.arrayId, BigInt(want.id))
    assert.is(v.blockIndex, BigInt(want.index))
    assert.is(value.length, v.dataOffset + pageSize, 'one data page')
    assert.is(v.serial, 1n, 'written by the first commit (a new store is created with its format record, no commit)')
    assert.ok(value.subarray(52, v.dataOffset).every((b) => b === 0), 'the rest of the header page is zeros')
    assert.is(v.stored.subarray(0, v.dataLength).toString('hex'), want.data)
    assert.ok(v.stored.subarray(v.dataLength).every((b) => b === 0), 'zero-filled to the page end')
    assert.is(v.checksum, expectedChecksum(value), 'CRC32C of the data, then of the header')
  }
  const meta = dump(dir, 'meta').map(([k]) => Buffer.from(k, 'hex').toString())
  assert.ok(meta.includes('format'), `meta keys: ${meta.join(', ')}`)
})

test.run()
