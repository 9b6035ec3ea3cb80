// A txarray store is identified by its format record before anything is written: another
// program's LMDB environment is refused byte for byte untouched, with no file left behind.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FormatError, open } from '../src/index'
import { encodeFormat } from '../src/metadata'
import { throwsCode } from './helpers/expect'
import { type LoadedDatabase, mdbLoadDatabases } from './helpers/mdb-tools'
import { tempDir } from './helpers/tmp'

const blockKey = Buffer.alloc(16)
blockKey.writeBigUInt64BE(1n, 0)

/** A directory holding an environment written by another program, as mdb_load writes it. */
function foreignStore(databases: LoadedDatabase[]): string {
  const dir = tempDir()
  mdbLoadDatabases(dir, databases)
  return dir
}

function snapshotOf(dir: string): Map<string, Buffer> {
  return new Map(fs.readdirSync(dir).sort().map((f) => [f, fs.readFileSync(path.join(dir, f))]))
}

/** Opens (every mode) and checks the refusal left every file as it was and added none. */
function refusedUntouched(dir: string, why: RegExp): void {
  const before = snapshotOf(dir)
  for (const options of [{}, { create: false }, { readOnly: true }]) {
    const e = throwsCode(() => open(dir, options), FormatError, 'TXA_FORMAT')
    assert.match(e.message, /not a txarray store/)
    assert.match(e.message, why)
    const after = snapshotOf(dir)
    assert.equal([...after.keys()], [...before.keys()], `no file added or removed (${JSON.stringify(options)})`)
    for (const [name, bytes] of before) {
      if (name !== 'lock.mdb') assert.ok(bytes.equals(after.get(name)!), `${name} unchanged`)
    }
  }
}

const ours = (overrides: Partial<Record<'meta' | 'arrays' | 'blocks' | 'log', LoadedDatabase>> = {}): LoadedDatabase[] => [
  overrides.meta ?? { name: 'meta', pairs: [['format', encodeFormat()]] },
  overrides.arrays ?? { name: 'arrays', pairs: [] },
  overrides.blocks ?? { name: 'blocks', pairs: [] },
  overrides.log ?? { name: 'log', pairs: [] },
]

test('sub-databases named like ours but no format record: refused, untouched, no file left', () => {
  const dir = foreignStore(ours({ meta: { name: 'meta', pairs: [['owner', 'someone else']] } }))
  refusedUntouched(dir, /no format record/)
})

test('a DUPSORT blocks database (even with our format record): refused, untouched', () => {
  const dir = foreignStore(ours({ blocks: { name: 'blocks', dupsort: true, pairs: [[blockKey, 'a'], [blockKey, 'b']] } }))
  refusedUntouched(dir, /'blocks' has flags/)
})

test('only some of our sub-databases: refused, untouched', () => {
  const dir = foreignStore([{ name: 'meta', pairs: [['format', encodeFormat()]] }])
  refusedUntouched(dir, /no sub-database 'arrays'/)
})

test('our sub-databases beside other keys of the main database: refused, untouched', () => {
  const dir = foreignStore([...ours(), { name: 'extra', pairs: [['k', 'v']] }])
  refusedUntouched(dir, /key 'extra'/)
})

test('a foreign environment that already has its lock file is refused as well', () => {
  const dir = foreignStore(ours({ meta: { name: 'meta', pairs: [] } }))
  fs.writeFileSync(path.join(dir, 'lock.mdb'), Buffer.alloc(8192))
  refusedUntouched(dir, /no format record/)
  assert.ok(!fs.existsSync(path.join(dir, 'txarray.signal')), 'no signal file')
})

test('an environment holding exactly our layout and format record is a store', () => {
  const dir = foreignStore(ours())
  const store = open(dir)
  assert.equal(store.list(), [])
  store.create('a', { dtype: 'int8', shape: [2] }).write(null, Int8Array.of(1, 2))
  store.commit()
  store.close()
  const again = open(dir, { create: false })
  assert.equal([...again.array('a').read().data], [1, 2])
  again.close()
})

test.run()
