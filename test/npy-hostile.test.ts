// Malformed and hostile .npy files: each is refused with NpyFormatError (TXA_NPY) before
// any array is created or any large allocation made; the header is parsed as data.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { NpyFormatError, open, readNpyHeader } from '../src/index'
import { throwsCode } from './helpers/expect'
import { dictText, npyFile } from './helpers/npy'
import { tempDir } from './helpers/tmp'

const ok = dictText('<i4', [2, 3])
const data24 = new Uint8Array(24)

function prefixOnly(version: number, length: number): Buffer {
  const b = Buffer.alloc(version === 1 ? 10 : 12)
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(b)
  if (version === 1) b.writeUInt16LE(length, 8)
  else b.writeUInt32LE(length, 8)
  return b
}

const cases: Array<[string, () => Buffer, RegExp]> = [
  ['empty file', () => Buffer.alloc(0), /magic/],
  ['wrong magic', () => Buffer.concat([Buffer.from('\x93NUMPX', 'latin1'), npyFile(ok, data24).subarray(6)]), /magic/],
  ['a text file', () => Buffer.from('descr,shape\n1,2\n'), /magic/],
  ['version 4.0', () => { const b = npyFile(ok, data24); b[6] = 4; return b }, /version 4\.0/],
  ['version 1.1', () => { const b = npyFile(ok, data24); b[7] = 1; return b }, /version 1\.1/],
  ['version 0.0', () => { const b = npyFile(ok, data24); b[6] = 0; return b }, /version 0\.0/],
  ['truncated inside the prefix', () => npyFile(ok, data24).subarray(0, 9), /truncated|magic/],
  ['truncated inside the header', () => npyFile(ok, data24).subarray(0, 40), /truncated inside its header/],
  ['header length 4 GiB - 1 (v2)', () => Buffer.concat([prefixOnly(2, 0xffffffff), Buffer.from(ok)]), /longer than the limit/],
  ['header length 65535 over a short file (v1)', () => Buffer.concat([prefixOnly(1, 0xffff), Buffer.from(ok)]), /longer than the limit|truncated/],
  ['data truncated', () => npyFile(ok, data24.subarray(0, 20)), /truncated: shape \(2, 3\) needs 24/],
  ['bytes after the data', () => npyFile(ok, new Uint8Array(30)), /after its data/],
  ['huge shape (2^40, 2^40)', () => npyFile(dictText('<f8', [2 ** 40, 2 ** 40])), /too large/],
  ['a length beyond 2^53', () => npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }"), /beyond 2\^53/],
  ['a length of 41 digits', () => npyFile(`{'descr': '<f8', 'fortran_order': False, 'shape': (${'9'.repeat(41)},), }`), /too many digits/],
  ['negative length', () => npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 3), }"), /negative/],
  ['shape a list', () => npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': [2, 3], }", data24), /not a tuple/],
  ['shape holds a string', () => npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': ('2',), }"), /other than integers/],
  ['shape of 33 axes', () => npyFile(dictText('<f8', new Array(33).fill(1)), new Uint8Array(8)), /33 axes/],
  ['0-d shape ()', () => npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", new Uint8Array(8)), /0-d/],
  ['not a dict', () => npyFile("['descr', '<f8']"), /not a dict/],
  ['missing key', () => npyFile("{'descr': '<f8', 'shape': (3,), }", data24), /exactly the keys/],
  ['extra key', () => npyFile("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", data24), /exactly the keys/],
  ['repeated key', () => npyFile("{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (2, 3)}", data24), /repeats/],
  ['fortran_order not a bool', () => npyFile("{'descr': '<i4', 'fortran_order': 0, 'shape': (2, 3), }", data24), /fortran_order/],
  ['unclosed dict', () => npyFile("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), ", data24), /expected|unexpected end/],
  ['unterminated string', () => npyFile("{'descr': '<i4, 'fortran_order': False}", data24), /bad \.npy header/],
  ['code, not data', () => npyFile("{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (2, 3)}", data24), /not a literal/],
  ['a call in the shape', () => npyFile("{'descr': '<i4', 'fortran_order': False, 'shape': tuple(range(3))}", data24), /not a literal/],
  ['deep nesting', () => npyFile(`{'descr': ${'('.repeat(50)}1${')'.repeat(50)}}`), /nesting deeper/],
  ['too many items', () => npyFile(`{'descr': '<i4', 'fortran_order': False, 'shape': (${new Array(300).fill(0).join(',')})}`), /too many items/],
  ['non-ASCII byte (v1)', () => npyFile("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), 'é': 1}", data24), /non-ASCII/],
  ['non-ASCII text (v3, UTF-8)', () => npyFile("{'descr': [('名', '<i4')], 'fortran_order': False, 'shape': (2, 3), }", data24, 3), /non-ASCII/],
  ['a NUL byte', () => npyFile("{'descr': '<i4',\u0000 'fortran_order': False, 'shape': (2, 3), }", data24), /control byte 0x00/],
  ['structured dtype', () => npyFile("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2, 3), }", data24), /structured/],
  ['object dtype (pickles)', () => npyFile(dictText('|O', [2, 3]), new Uint8Array(48)), /not supported/],
  ['bool dtype', () => npyFile(dictText('|b1', [2, 3]), new Uint8Array(6)), /not supported/],
  ['float16', () => npyFile(dictText('<f2', [2, 3]), new Uint8Array(12)), /not supported/],
  ['complex128', () => npyFile(dictText('<c16', [2, 3]), new Uint8Array(96)), /not supported/],
  ['unicode strings', () => npyFile(dictText('<U8', [2, 3]), new Uint8Array(192)), /not supported/],
  ['datetime', () => npyFile(dictText('<M8[ns]', [2, 3]), new Uint8Array(48)), /not supported/],
  ["'|' on a multi-byte type", () => npyFile(dictText('|i4', [2, 3]), data24), /multi-byte/],
  ['a huge descr string', () => npyFile(`{'descr': '${'<'.repeat(2000)}', 'fortran_order': False, 'shape': (2, 3), }`, data24), /longer than 1024/],
  ['junk after the dict', () => npyFile(`${ok} x`, data24), /after the literal/],
]

test(`${cases.length} hostile files each give NpyFormatError (TXA_NPY), create nothing, and crash nothing`, () => {
  assert.ok(cases.length >= 20)
  const dir = tempDir()
  const store = open(path.join(dir, 'store'), { sync: false })
  cases.forEach(([what, make, message], i) => {
    const file = path.join(dir, `h${i}.npy`)
    fs.writeFileSync(file, make())
    const e = throwsCode(() => store.importNpy(`h${i}`, file), NpyFormatError, 'TXA_NPY')
    if (!message.test(e.message)) assert.unreachable(`${what}: message "${e.message}" does not match ${message}`)
    // a 0-d file is a valid .npy that only import refuses
    if (what.startsWith('0-d')) assert.equal(readNpyHeader(file).shape, [])
    else throwsCode(() => readNpyHeader(file), NpyFormatError, 'TXA_NPY')
  })
  assert.equal(store.list(), [])
  assert.not.ok(store.dirty)
  store.close()
})

test('a valid file beside them imports (the cases differ from it only in what they break)', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'), { sync: false })
  const file = path.join(dir, 'ok.npy')
  fs.writeFileSync(file, npyFile(ok, Uint8Array.from({ length: 24 }, (_, i) => (i % 4 === 0 ? i / 4 : 0))))
  store.importNpy('ok', file)
  assert.equal(Array.from(store.array('ok', 'int32').read().data), [0, 1, 2, 3, 4, 5])
  // Python 2 long suffixes, double quotes, no trailing comma, tabs: all literal forms numpy accepts
  fs.writeFileSync(file, npyFile('{"descr":\t"<i4", "shape": (2L, 3L), "fortran_order": False}', data24))
  store.importNpy('py2', file)
  assert.equal(store.array('py2').shape, [2, 3])
  store.close()
})

test('the header read is bounded: a declared 4 GiB header reads at most the limit', () => {
  const dir = tempDir()
  const file = path.join(dir, 'big-header.npy')
  // a sparse 5 GiB file whose header claims 4 GiB - 1: refused from its length field alone
  const fd = fs.openSync(file, 'w')
  fs.writeSync(fd, prefixOnly(3, 0xffffffff))
  fs.ftruncateSync(fd, 5 * 2 ** 30)
  fs.closeSync(fd)
  const before = process.memoryUsage().rss
  throwsCode(() => readNpyHeader(file), NpyFormatError, 'TXA_NPY')
  assert.ok(process.memoryUsage().rss - before < 64 * 2 ** 20, 'no large allocation')
})

test.run()
