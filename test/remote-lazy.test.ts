// A remote store's cache filled lazily: open(path, { remote, remoteBlocks: 'lazy' }) keeps
// only the block versions (stubs) of other machines' commits and fetches a block's bytes
// from the server when the handle first reads it. Machines are handles with caches of
// their own on one real PostgreSQL store; views run in both fault modes (test/run.mjs).
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, faultMode, open, RemoteUnavailableError, slice, type Store } from '../src/index'
import { startChild } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { testPostgres } from './helpers/postgres'
import { tempDir } from './helpers/tmp'
import { until } from './helpers/until'

const found = testPostgres()
const BLOCK = 65536
const PER_BLOCK = BLOCK / 8  // float64 elements per block
const BLOCKS = 48
/** Views' faults wait for fetches (userfaultfd mode) instead of views fetching when made. */
const faultsWait = faultMode().mode === 'uffd'

if ('skipped' in found) {
  console.log(`remote-lazy: skipped (${found.skipped})`)
  test.skip('blocks fetched on demand', () => undefined)
} else {
  const server = found.server
  let database: string | null = null

  /** A fresh remote store whose machine A committed array `x`: BLOCKS blocks of float64 i + 0.5. */
  async function storeWithArray(): Promise<{ url: string; schema: string; a: Store; lazy(cache?: string): Store; expected: Float64Array }> {
    const url = (database ??= await server.freshDatabase())
    const schema = `s_${randomBytes(5).toString('hex')}`
    const a = open(tempDir(), { remote: url, remoteSchema: schema })
    const expected = new Float64Array(BLOCKS * PER_BLOCK).map((_, i) => i + 0.5)
    a.create('x', { dtype: 'float64', shape: [expected.length], blockBytes: BLOCK }).write(null, expected)
    a.commit()
    return { url, schema, a, expected, lazy: (cache = tempDir()) => open(cache, { remote: url, remoteSchema: schema, remoteBlocks: 'lazy' }) }
  }

  test('a lazy cache holds stubs: check() counts them, nothing is fetched at open', async () => {
    const { a, lazy } = await storeWithArray()
    const b = lazy()
    assert.is(b.serial, 1)
    const report = b.check()
    assert.ok(report.ok, JSON.stringify(report.problems))
    assert.is(report.blocks, BLOCKS)
    assert.is(report.blocksOnServer, BLOCKS, 'every block is a stub')
    assert.is(report.bytes, 0)
    assert.is(b.stats().blocksFetched, 0)
    assert.equal(b.array('x').shape, [BLOCKS * PER_BLOCK], 'records are there in full')
    a.close()
    b.close()
  })

  test('read() and take() fetch exactly the blocks they touch, once per snapshot, and read what A wrote', async () => {
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const x = b.array('x', 'float64')
    // Rows 3.5 blocks in, across the boundary of blocks 3 and 4.
    const from = 3 * PER_BLOCK + PER_BLOCK / 2
    const window = x.read([slice(from, from + PER_BLOCK)])
    assert.equal(Array.from(window.data), Array.from(expected.subarray(from, from + PER_BLOCK)))
    assert.is(b.stats().blocksFetched, 2)
    assert.is(b.stats().bytesFetched, 2 * BLOCK)
    // Again in the same snapshot: served from what was fetched.
    x.read([slice(from, from + 10)])
    assert.is(b.stats().blocksFetched, 2)
    // take(): windows in blocks 4 (fetched), 10 and 40 (not yet): two more.
    const starts = [4 * PER_BLOCK + 7, 10 * PER_BLOCK, 40 * PER_BLOCK + 100]
    const taken = x.take(starts, 3)
    assert.equal(Array.from(taken.data), starts.flatMap((s) => [s + 0.5, s + 1.5, s + 2.5]))
    assert.is(b.stats().blocksFetched, 4)
    // A strided read touching every 8th block fetches those only.
    const strided = x.read([slice(0, BLOCKS * PER_BLOCK, 8 * PER_BLOCK)])
    assert.equal(Array.from(strided.data), Array.from({ length: BLOCKS / 8 }, (_, i) => i * 8 * PER_BLOCK + 0.5))
    assert.is(b.stats().blocksFetched, 4 + BLOCKS / 8 - 1, 'block 40 was fetched already')
    // The fetched blocks were written into the cache: a later snapshot reads them locally.
    b.refresh()
    assert.is(b.check().blocksOnServer, BLOCKS - b.stats().blocksFetched)
    const before = b.stats().blocksFetched
    assert.equal(Array.from(b.array('x', 'float64').read([slice(from, from + 4)]).data), Array.from(expected.subarray(from, from + 4)))
    assert.is(b.stats().blocksFetched, before, 'nothing fetched again')
    // The whole array, verified against the checksums of the fetched blocks.
    assert.equal(b.array('x', 'float64').read(null, undefined, { verifyChecksums: true }).data, expected)
    assert.is(b.stats().blocksFetched, BLOCKS)
    assert.is(b.stats().bytesFetched, BLOCKS * BLOCK)
    a.close()
    b.close()
  })

  test('views fault in the fetched blocks (both fault modes); views() scans the array', async () => {
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const x = b.array('x', 'float64')
    const view = x.view(5 * PER_BLOCK, 7 * PER_BLOCK)
    // userfaultfd: the view's faults fetch (test/remote-fault-fetch.test.ts), the first one
    // its window of 256 KiB (blocks 4-7); SIGSEGV: the view fetched its two blocks.
    assert.is(b.stats().blocksFetched, faultsWait ? 0 : 2)
    assert.equal(view, expected.subarray(5 * PER_BLOCK, 7 * PER_BLOCK))
    if (faultsWait) {
      // The touched blocks (5, 6) are fetched by now; the rest of the window (4, 7) is read
      // ahead and may still be on its way.
      const fetched = b.stats().blocksFetched
      assert.ok(fetched >= 2 && fetched <= 4, `${fetched} blocks fetched`)
      await until('the window was read ahead', () => b.stats().blocksFetched === 4)
    }
    assert.is(b.stats().blocksFetched, faultsWait ? 4 : 2)
    let sum = 0
    for (const part of x.views(8 * PER_BLOCK)) for (let i = 0; i < part.length; i += PER_BLOCK) sum += part[i]
    assert.is(sum, Array.from({ length: BLOCKS }, (_, i) => i * PER_BLOCK + 0.5).reduce((p, q) => p + q, 0))
    assert.is(b.stats().blocksFetched, BLOCKS)
    // A view over blocks that were zeros when it was made: A writes one, B moves, the view
    // shows it (fetched when B moved, before any fault).
    a.create('z', { dtype: 'float64', shape: [4 * PER_BLOCK], blockBytes: BLOCK }).write([slice(0, 1)], 1)
    a.commit()
    b.refresh()
    const z = b.array('z', 'float64').view()
    assert.is(z[2 * PER_BLOCK + 3], 0)
    a.array('z', 'float64').write([slice(2 * PER_BLOCK + 3, 2 * PER_BLOCK + 4)], 9)
    a.commit()
    b.refresh()
    assert.is(z[2 * PER_BLOCK + 3], 9)
    assert.is(z[0], 1)
    a.close()
    b.close()
  })

  test('a commit of A to a block B holds replaces it on B at refresh, not before (snapshot isolation)', async () => {
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const x = b.array('x', 'float64')
    const view = x.view(2 * PER_BLOCK, 3 * PER_BLOCK)
    assert.is(view[1], expected[2 * PER_BLOCK + 1])
    assert.is(x.read([slice(9 * PER_BLOCK, 9 * PER_BLOCK + 1)]).data[0], 9 * PER_BLOCK + 0.5)
    // userfaultfd: the view's fault fetched block 2 with its window (blocks 0-3), the rest of
    // which may still be read ahead; SIGSEGV: the view fetched block 2 alone. read(): block 9.
    await until('the window was read ahead', () => b.stats().blocksFetched >= (faultsWait ? 5 : 2)).catch(() => undefined)
    assert.is(b.stats().blocksFetched, faultsWait ? 5 : 2)
    b.refresh()  // blocks 2 and 9 are now in B's cache in full
    a.array('x', 'float64').write([slice(2 * PER_BLOCK + 1, 2 * PER_BLOCK + 2)], -1)
    a.array('x', 'float64').write([slice(9 * PER_BLOCK, 9 * PER_BLOCK + 1)], -2)
    a.commit()
    const fetched = b.stats().blocksFetched
    assert.is(view[1], expected[2 * PER_BLOCK + 1], 'B still reads its snapshot')
    assert.is(b.array('x', 'float64').read([slice(9 * PER_BLOCK, 9 * PER_BLOCK + 1)]).data[0], 9 * PER_BLOCK + 0.5)
    b.refresh()
    // Blocks B held came with their new bytes at catch-up: the view faults them in at once.
    assert.is(view[1], -1, 'the view shows the new snapshot')
    assert.is(view[0], expected[2 * PER_BLOCK])
    assert.is(b.array('x', 'float64').read([slice(9 * PER_BLOCK, 9 * PER_BLOCK + 2)]).data[0], -2)
    assert.is(b.stats().blocksFetched, fetched, 'nothing fetched on demand')
    // A block B never read stays a stub at its new version, fetched when read.
    a.array('x', 'float64').write([slice(11 * PER_BLOCK, 11 * PER_BLOCK + 1)], -3)
    a.commit()
    b.refresh()
    assert.is(b.array('x', 'float64').read([slice(11 * PER_BLOCK, 11 * PER_BLOCK + 2)]).data[0], -3)
    assert.is(b.stats().blocksFetched, fetched + 1)
    assert.ok(b.check().ok)
    a.close()
    b.close()
  })

  test('B writes part of a stub block, appends onto a stub tail, shrinks into a stub block, and commits', async () => {
    const { a, lazy, expected } = await storeWithArray()
    // A second array whose tail block is partly full.
    a.create('t', { dtype: 'float64', shape: [PER_BLOCK + 3], blockBytes: BLOCK }).write(null, 1)
    a.commit()
    const b = lazy()
    b.array('x', 'float64').write([slice(20 * PER_BLOCK + 5, 20 * PER_BLOCK + 6)], 42)
    b.array('t', 'float64').append(new Float64Array([2, 2]))
    b.array('x', 'float64').resize([30 * PER_BLOCK + 10])
    b.commit()
    assert.is(b.stats().blocksFetched, 3, 'blocks 20 and 30 of x, block 1 of t')
    a.refresh()
    const want = expected.slice(0, 30 * PER_BLOCK + 10)
    want[20 * PER_BLOCK + 5] = 42
    assert.equal(a.array('x', 'float64').read().data, want)
    assert.equal(Array.from(a.array('t', 'float64').read([slice(PER_BLOCK, null)]).data), [1, 1, 1, 2, 2])
    // Growing again reads zeros past the cut, never the old bytes.
    a.array('x', 'float64').resize([31 * PER_BLOCK])
    a.commit()
    b.refresh()
    assert.equal(Array.from(b.array('x', 'float64').read([slice(30 * PER_BLOCK + 8, 30 * PER_BLOCK + 12)]).data),
      [30 * PER_BLOCK + 8.5, 30 * PER_BLOCK + 9.5, 0, 0])
    a.close()
    b.close()
  })

  test('the server stopped before a fetch: RemoteUnavailableError, nothing lost; after a restart the read works', async () => {
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const x = b.array('x', 'float64')
    assert.is(x.read([slice(0, 1)]).data[0], 0.5)
    a.close()
    server.stop('immediate')
    try {
      throwsCode(() => x.read([slice(PER_BLOCK, PER_BLOCK + 1)]), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
      // SIGSEGV mode: a view fetches its range when made (userfaultfd: when it faults).
      if (!faultsWait) throwsCode(() => x.view(PER_BLOCK, 2 * PER_BLOCK), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
      assert.is(x.read([slice(1, 2)]).data[0], 1.5, 'what was fetched still reads')
    } finally {
      server.start()
    }
    assert.equal(x.read([slice(PER_BLOCK, 2 * PER_BLOCK)]).data, expected.subarray(PER_BLOCK, 2 * PER_BLOCK))
    b.close()
  })

  test('the connection cut in the middle of a fetch: RemoteUnavailableError, then the read works', async () => {
    const { url, schema, a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const x = b.array('x', 'float64')
    const cutter = startChild('fetch-cutter.child.ts', [url, schema])
    let out = ''
    cutter.stdout!.on('data', (d) => { out += String(d) })
    while (!out.includes('locked')) await once(cutter.stdout!, 'data')
    throwsCode(() => x.take([3 * PER_BLOCK, 7 * PER_BLOCK], 2), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
    const [code] = await once(cutter, 'exit')
    assert.is(code, 0, out)
    assert.ok(out.includes('cut'))
    assert.is(b.stats().blocksFetched, 0)
    assert.equal(Array.from(x.take([3 * PER_BLOCK, 7 * PER_BLOCK], 2).data), [3 * PER_BLOCK + 0.5, 3 * PER_BLOCK + 1.5, 7 * PER_BLOCK + 0.5, 7 * PER_BLOCK + 1.5])
    assert.equal(x.read().data, expected)
    a.close()
    b.close()
  })

  test('a lazy cache opened without the server (readOnly) reads what it holds and names what it lacks', async () => {
    const { a, lazy } = await storeWithArray()
    const cache = tempDir()
    const b = lazy(cache)
    b.array('x', 'float64').read([slice(0, 1)])
    b.close()
    // The link's thread writes fetched blocks into the cache after answering: soon, not at once.
    let offline = open(cache, { readOnly: true })
    for (const end = Date.now() + 10_000; ;) {
      try {
        assert.is(offline.array('x', 'float64').read([slice(0, 1)]).data[0], 0.5, 'the fetched block was cached')
        break
      } catch (e) {
        if (!(e instanceof RemoteUnavailableError) || Date.now() > end) throw e
      }
      offline.close()
      await new Promise((r) => setTimeout(r, 20))
      offline = open(cache, { readOnly: true })
    }
    const e = throwsCode(() => offline.array('x', 'float64').read([slice(PER_BLOCK, PER_BLOCK + 1)]), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
    assert.match(e.message, /on the remote server/)
    assert.ok(offline.check().ok)
    offline.close()
    a.close()
  })

  test('exportNpy() of a lazy array fetches what it writes: the file holds what A wrote', async () => {
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const file = path.join(tempDir(), 'x.npy')
    b.array('x', 'float64').exportNpy(file, { selection: [slice(PER_BLOCK, 3 * PER_BLOCK)] })
    assert.is(b.stats().blocksFetched, 2)
    const bytes = readFileSync(file)
    const headerEnd = 10 + bytes.readUInt16LE(8)
    assert.equal(new Float64Array(bytes.buffer.slice(bytes.byteOffset + headerEnd, bytes.byteOffset + bytes.byteLength)),
      expected.slice(PER_BLOCK, 3 * PER_BLOCK))
    a.close()
    b.close()
  })

  test('an eager machine sharing a lazy cache fetches the stubs it meets', async () => {
    const { url, schema, a, lazy, expected } = await storeWithArray()
    const cache = tempDir()
    lazy(cache).close()
    const eager = open(cache, { remote: url, remoteSchema: schema })
    assert.equal(eager.array('x', 'float64').read().data, expected)
    assert.is(eager.stats().blocksFetched, BLOCKS)
    eager.close()
    a.close()
  })

  test('remoteBlocks is checked', async () => {
    const { url, schema, a } = await storeWithArray()
    throwsCode(() => open(tempDir(), { remote: url, remoteSchema: schema, remoteBlocks: 'some' as 'lazy' }), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => open(tempDir(), { remoteBlocks: 'lazy' }), ArgumentError, 'TXA_ARGUMENT')
    a.close()
  })
}

test.run()
