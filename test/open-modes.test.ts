// Opening a store: create or not, read-only, parent directories, paths.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, NotFoundError, ReadOnlyError, StorageError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { openInChild } from './helpers/open-in-child'
import { tempDir } from './helpers/tmp'

const isRoot = process.getuid?.() === 0
const NOBODY = 65534

function storeWithData(): string {
  const dir = path.join(tempDir(), 'store')
  const store = open(dir)
  const a = store.create('a', { dtype: 'int32', shape: [4] })
  a.write(null, Int32Array.of(1, 2, 3, 4))
  store.commit()
  store.close()
  return dir
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir).sort()
}

test('create: false refuses a missing store with NotFoundError and creates nothing', () => {
  const parent = tempDir()
  const missing = path.join(parent, 'typo')
  const e = throwsCode(() => open(missing, { create: false }), NotFoundError, 'TXA_NOT_FOUND')
  assert.match(e.message, /no txarray store at/)
  assert.equal(listing(parent), [], 'no directory was created')
  // an existing empty directory is not a store either, and stays empty
  throwsCode(() => open(parent, { create: false }), NotFoundError, 'TXA_NOT_FOUND')
  assert.equal(listing(parent), [])
})

test('create: false opens an existing store', () => {
  const dir = storeWithData()
  const store = open(dir, { create: false })
  assert.equal([...store.array('a').read().data], [1, 2, 3, 4])
  store.close()
})

test('open() creates the store directory but not missing parents: NotFoundError names the parent', () => {
  const parent = tempDir()
  const deep = path.join(parent, 'no', 'such', 'store')
  const e = throwsCode(() => open(deep), NotFoundError, 'TXA_NOT_FOUND')
  assert.match(e.message, /parent directory does not exist/)
  assert.equal(listing(parent), [])
  const store = open(path.join(parent, 'store'))
  store.close()
  assert.equal(listing(parent), ['store'])
})

test('a NUL byte in the path is refused with ArgumentError, creating nothing', () => {
  const parent = tempDir()
  throwsCode(() => open(path.join(parent, 'a\0b')), ArgumentError, 'TXA_ARGUMENT')
  assert.equal(listing(parent), [], 'the path was not cut at the NUL')
  throwsCode(() => open(parent, { create: 'yes' as never }), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => open(parent, { readOnly: 1 as never }), ArgumentError, 'TXA_ARGUMENT')
})

test('readOnly: a missing store is NotFoundError (never created)', () => {
  const parent = tempDir()
  throwsCode(() => open(path.join(parent, 'x'), { readOnly: true }), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => open(parent, { readOnly: true }), NotFoundError, 'TXA_NOT_FOUND')
  assert.equal(listing(parent), [])
})

test('readOnly: reads committed data; every change raises ReadOnlyError; data.mdb is not written', () => {
  const dir = storeWithData()
  const before = fs.readFileSync(path.join(dir, 'data.mdb'))
  const store = open(dir, { readOnly: true })
  assert.is(store.readOnly, true)
  const a = store.array('a', 'int32')
  assert.equal([...a.read().data], [1, 2, 3, 4])
  assert.equal(store.list(), ['a'])
  throwsCode(() => store.create('b', { dtype: 'int8', shape: [1] }), ReadOnlyError, 'TXA_READ_ONLY')
  throwsCode(() => store.delete('a'), ReadOnlyError, 'TXA_READ_ONLY')
  throwsCode(() => a.write([0], 9), ReadOnlyError, 'TXA_READ_ONLY')
  throwsCode(() => a.append(Int32Array.of(5)), ReadOnlyError, 'TXA_READ_ONLY')
  throwsCode(() => a.resize([2]), ReadOnlyError, 'TXA_READ_ONLY')
  throwsCode(() => a.setAttrs({ x: 1 }), ReadOnlyError, 'TXA_READ_ONLY')
  throwsCode(() => store.transact((s) => s.array('a').write([1], 7)), ReadOnlyError, 'TXA_READ_ONLY')
  assert.is(store.dirty, false, 'refused calls changed nothing')
  store.commit() // nothing to commit: moves to the newest snapshot
  store.flush()
  // a write through a view stays in this handle; commit refuses it, abort drops it
  const v = a.view()
  v[0] = 42
  assert.is(store.dirty, true)
  throwsCode(() => store.commit(), ReadOnlyError, 'TXA_READ_ONLY')
  store.abort()
  assert.equal([...a.read().data], [1, 2, 3, 4])
  store.close()
  assert.ok(before.equals(fs.readFileSync(path.join(dir, 'data.mdb'))), 'data.mdb unchanged')
})

test('readOnly: a writer in another process is seen after refresh()', () => {
  const dir = storeWithData()
  const reader = open(dir, { readOnly: true })
  const child = openInChild(dir, {}, { write: true })
  assert.equal(child.outcome?.write, { ok: true, code: null }, child.output)
  assert.is(reader.list().length, 1)
  reader.refresh()
  assert.is(reader.list().length, 2)
  reader.close()
})

test('a path open read-only in this process cannot also be opened for writing (ReadOnlyError)', () => {
  const dir = storeWithData()
  const reader = open(dir, { readOnly: true })
  const e = throwsCode(() => open(dir), ReadOnlyError, 'TXA_READ_ONLY')
  assert.match(e.message, /open read-only in this process/)
  const second = open(dir, { readOnly: true })
  second.close()
  reader.close()
  const writer = open(dir) // all read-only handles closed: fine now
  const readerBeside = open(dir, { readOnly: true }) // joins the writable environment, stays read-only
  throwsCode(() => readerBeside.array('a').write([0], 1), ReadOnlyError, 'TXA_READ_ONLY')
  readerBeside.close()
  writer.close()
})

test('readOnly works on a directory and files the user may not write', () => {
  const dir = storeWithData()
  const files = listing(dir)
  const blocker = open(dir) // keeps lock.mdb in use, as a live writer would
  blocker.close()
  for (const f of files) fs.chmodSync(path.join(dir, f), 0o444)
  fs.chmodSync(dir, 0o555)
  fs.chmodSync(path.dirname(dir), 0o755)
  try {
    if (isRoot) {
      // root ignores permissions: run the opens as an unprivileged user
      const ro = openInChild(dir, { readOnly: true }, { write: true, user: NOBODY })
      assert.is(ro.signal, null, ro.output)
      assert.ok(ro.outcome?.ok, ro.output)
      assert.equal(ro.outcome?.arrays?.a?.shape, [4])
      assert.equal(ro.outcome?.write, { ok: false, code: 'TXA_READ_ONLY' })
      const rw = openInChild(dir, {}, { user: NOBODY })
      assert.is(rw.outcome?.ok, false, rw.output)
      assert.is(rw.outcome?.code, 'TXA_STORAGE')
      assert.match(rw.outcome?.message ?? '', /readOnly: true/)
    } else {
      const store = open(dir, { readOnly: true })
      assert.equal([...store.array('a').read().data], [1, 2, 3, 4])
      store.close()
      const e = throwsCode(() => open(dir), StorageError, 'TXA_STORAGE')
      assert.match(e.message, /readOnly: true/)
    }
    assert.equal(listing(dir), files, 'no file was created')
  } finally {
    fs.chmodSync(dir, 0o755)
  }
})

if (!isRoot) console.log('  skipped: mounting a read-only file system needs root')
;(isRoot ? test : test.skip)('readOnly works on a read-only file system (root: a tmpfs remounted read-only)', () => {
  const mount = tempDir('txarray-rofs-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount])
  try {
    const dir = path.join(mount, 'store')
    const store = open(dir)
    store.create('a', { dtype: 'float64', shape: [3] }).write(null, Float64Array.of(1.5, 2.5, 3.5))
    store.commit()
    store.close()
    execFileSync('mount', ['-o', 'remount,ro', mount])
    const ro = open(dir, { readOnly: true })
    assert.equal([...ro.array('a').read().data], [1.5, 2.5, 3.5])
    throwsCode(() => ro.array('a').write([0], 0), ReadOnlyError, 'TXA_READ_ONLY')
    ro.close()
    const e = throwsCode(() => open(dir), StorageError, 'TXA_STORAGE')
    assert.match(e.message, /readOnly: true|read-only/i)
  } finally {
    execFileSync('umount', [mount])
  }
})

test.run()
