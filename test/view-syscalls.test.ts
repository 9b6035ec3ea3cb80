// Views are real memory that system calls can read and write. With userfaultfd the
// kernel waits for the fault service, so fs.writeSync(fd, view) / fs.readSync(fd, view)
// work on untouched pages. With the SIGSEGV fallback (and a user-mode-only userfaultfd)
// the kernel returns EFAULT for blocks that are not mapped yet instead of raising a signal
// (vmem.h): there the call fails with EFAULT, nothing crashes, and touching the view first,
// or making it with { populate: true }, makes it work. A mapped block is read-write.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { faultMode, open } from '../src/index'
import { sameBytes } from './helpers/bytes'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

const mode = faultMode().mode
/** System calls on untouched view pages are served (uffd with kernel faults), else EFAULT. */
const systemCalls = faultMode().systemCalls
const BLOCK = 4096
const N = 64 * BLOCK // 64 blocks of uint8

function setup(seed: number) {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'uint8'>('b', { dtype: 'uint8', shape: [0], blockBytes: BLOCK })
  const data = new Rng(seed).bytes(N)
  a.append(data)
  store.commit()
  store.close()
  const again = open(dir, { sync: false }) // a fresh handle: no page loaded
  return { dir, store: again, a: again.array('b', 'uint8'), data }
}

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e)
  }
  return undefined
}

/** Reads a view once per page (what "touching the pages" means for a write(2)). */
function touchForRead(v: Uint8Array): number {
  let s = 0
  for (let i = 0; i < v.length; i += 1024) s += v[i] // views need not start on a page
  return s + v[v.length - 1]
}

/** Writes a view once per block, keeping its value (makes the pages writable for a read(2)). */
function touchForWrite(v: Uint8Array): void {
  for (let i = 0; i < v.length; i += 1024) v[i] = v[i]
  v[v.length - 1] = v[v.length - 1]
}

test(`a view made with { populate: true } works with system calls at once, in every mode (${mode} mode)`, () => {
  const { store, a, data } = setup(3)
  const v = a.view(2 * BLOCK + 7, 50 * BLOCK + 3, { populate: true })
  const out = path.join(tempDir(), 'pop.bin')
  const fd = fs.openSync(out, 'w')
  assert.is(fs.writeSync(fd, v), v.length, 'write(2) from the populated view')
  fs.closeSync(fd)
  sameBytes(fs.readFileSync(out), data.subarray(2 * BLOCK + 7, 50 * BLOCK + 3), 'the file holds the view')
  const incoming = new Rng(5).bytes(v.length)
  fs.writeFileSync(out, incoming)
  const rfd = fs.openSync(out, 'r')
  assert.is(fs.readSync(rfd, v, 0, v.length, 0), v.length, 'read(2) into the populated view')
  fs.closeSync(rfd)
  store.commit()
  const expected = Uint8Array.from(data)
  expected.set(incoming, 2 * BLOCK + 7)
  sameBytes(a.read().data, expected, 'the bytes read(2) stored are committed')
  assert.throws(() => a.view(0, 10, { populate: 'yes' as unknown as boolean }), (e: Error & { code?: string }) => e.code === 'TXA_ARGUMENT')
  store.close()
})

test(`a write through a mapped block takes no fault and is found at commit: exactly that block is stored (${mode} mode)`, () => {
  const { store, a } = setup(4)
  const v = a.view()
  let s = 0
  for (let i = 0; i < v.length; i += 512) s += v[i] // map every block
  const before = a.viewStats()
  v[10 * BLOCK + 5] ^= 0xff
  v[10 * BLOCK + 6] ^= 0xff
  const after = a.viewStats()
  assert.is(after.faults, before.faults, 'no fault of ours for writes to mapped blocks (the kernel copies the page)')
  assert.ok(after.fileBlocks > 0, `blocks are mapped from the data file: ${after.fileBlocks}`)
  const written = store.stats().blocksWritten
  store.commit()
  assert.is(store.stats().blocksWritten - written, 1, 'one block stored')
  assert.ok(Number.isFinite(s))
  store.close()
})

test(`fs.writeSync(fd, view) of an untouched view (${mode} mode)`, () => {
  const { store, a, data } = setup(1)
  const file = path.join(tempDir(), 'out.bin')
  const fd = fs.openSync(file, 'w')
  const v = a.view(3 * BLOCK + 100, 40 * BLOCK + 17) // unaligned, spans 38 blocks
  const expected = data.subarray(3 * BLOCK + 100, 40 * BLOCK + 17)
  if (systemCalls) {
    assert.is(fs.writeSync(fd, v), v.length)
  } else {
    assert.is(errnoOf(() => fs.writeSync(fd, v)), 'EFAULT', 'the kernel refuses untouched pages')
    assert.is(fs.fstatSync(fd).size, 0, 'nothing was written')
    touchForRead(v)
    assert.is(fs.writeSync(fd, v), v.length, 'after touching, write(2) works')
  }
  fs.closeSync(fd)
  sameBytes(fs.readFileSync(file), expected, 'the file holds the view')
  sameBytes(v, expected, 'the view still holds the data')
  assert.not.ok(store.dirty, 'writing a view to a file changes nothing')
  store.close()
})

test(`fs.readSync(fd, view) into an untouched view, then commit() stores the bytes (${mode} mode)`, () => {
  const { dir, store, a, data } = setup(2)
  const incoming = new Rng(99).bytes(20 * BLOCK + 333)
  const file = path.join(tempDir(), 'in.bin')
  fs.writeFileSync(file, incoming)
  const at = 10 * BLOCK + 5
  const v = a.view(at, at + incoming.length)
  const fd = fs.openSync(file, 'r')
  if (systemCalls) {
    assert.is(fs.readSync(fd, v, 0, v.length, 0), incoming.length)
  } else {
    assert.is(errnoOf(() => fs.readSync(fd, v, 0, v.length, 0)), 'EFAULT', 'the kernel refuses pages that are not loaded')
    // a touched block is mapped read-write (the kernel copies a page on its first write)
    touchForRead(v)
    assert.is(fs.readSync(fd, v, 0, v.length, 0), incoming.length, 'after touching every block, read(2) works')
  }
  fs.closeSync(fd)
  sameBytes(v, incoming, 'the view holds the file')
  assert.ok(store.dirty, 'read(2) into a view is a change')
  const expected = Uint8Array.from(data)
  expected.set(incoming, at)
  sameBytes(a.read().data, expected, 'read() sees the bytes read(2) stored')
  const before = store.stats().blocksWritten
  store.commit()
  assert.is(store.stats().blocksWritten - before, 21, 'the 21 blocks the read covered were stored')
  store.close()
  const again = open(dir)
  sameBytes(again.array('b', 'uint8').read().data, expected, 'after reopening')
  again.close()
})

test(`async fs.write and fs.read with views (${mode} mode)`, async () => {
  const { store, a, data } = setup(3)
  const file = path.join(tempDir(), 'async.bin')
  const fh = await fs.promises.open(file, 'w+')
  const v = a.view(0, 8 * BLOCK)
  if (!systemCalls) touchForRead(v)
  const { bytesWritten } = await fh.write(v, 0, v.length, 0)
  assert.is(bytesWritten, v.length)
  const w = a.view(30 * BLOCK, 38 * BLOCK)
  if (!systemCalls) touchForWrite(w)
  const { bytesRead } = await fh.read(w, 0, w.length, 0)
  assert.is(bytesRead, w.length)
  await fh.close()
  sameBytes(w, data.subarray(0, 8 * BLOCK), 'blocks 0..7 copied to 30..37 through a file')
  store.commit()
  const expected = Uint8Array.from(data)
  expected.copyWithin(30 * BLOCK, 0, 8 * BLOCK)
  sameBytes(a.read().data, expected, 'after commit')
  store.close()
})

test('Buffer.from(view.buffer) and TextDecoder work on views (plain memory access)', () => {
  const store = open(tempDir())
  const a = store.create<'uint8'>('t', { dtype: 'uint8', shape: [0], blockBytes: BLOCK })
  a.append(new TextEncoder().encode('hello, out-of-core world'))
  store.commit()
  const v = a.view()
  assert.is(new TextDecoder().decode(v), 'hello, out-of-core world')
  assert.is(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8', 7, 18), 'out-of-core')
  store.close()
})

test.run()
