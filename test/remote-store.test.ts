// The public API over a remote store: open(path, { remote }) on several "machines" (handles
// with caches of their own, each with its own connection thread) sharing one PostgreSQL
// store. Everything a local store does works, with snapshot isolation across machines.
import { randomBytes } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ArgumentError, ConflictError, FormatError, open, slice, RemoteUnavailableError, type Store, TransactionError,
} from '../src/index'
import { testPostgres } from './helpers/postgres'
import { rejectsCode, throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

const found = testPostgres()

if ('skipped' in found) {
  console.log(`remote-store: skipped (${found.skipped})`)
  test.skip('a store shared by several machines through PostgreSQL', () => undefined)
} else {
  const server = found.server
  let database: string | null = null
  /** A fresh remote store (a schema of its own) and a function opening a machine on it. */
  async function remoteStore(): Promise<{ url: string; machine(): Store }> {
    const url = (database ??= await server.freshDatabase())
    const remoteSchema = `s_${randomBytes(5).toString('hex')}`
    const opened: Store[] = []
    return { url, machine: () => { const s = open(tempDir(), { remote: url, remoteSchema }); opened.push(s); return s } }
  }
  const values = (s: Store, name: string) => Array.from(s.array(name, 'float64').read().data)

  test('two machines: what A commits, B sees after refresh() and not before; each reads one snapshot', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    assert.ok(a.remote && b.remote)
    const x = a.create('x', { dtype: 'float64', shape: [0, 2], blockBytes: 4096 })
    x.append(new Float64Array([1, 2, 3, 4]))
    assert.not.ok(b.has('x'), 'nothing committed yet')
    a.commit()
    assert.is(a.serial, 1)
    assert.equal(values(a, 'x'), [1, 2, 3, 4], 'A reads its commit back')
    assert.not.ok(b.has('x'), "B's snapshot is older")
    b.refresh()
    assert.is(b.serial, 1)
    assert.equal(values(b, 'x'), [1, 2, 3, 4])
    const view = b.array('x', 'float64').view()
    // A goes on; B's snapshot, view included, stays put until B moves.
    x.write([0, 0], 10)
    x.append(new Float64Array([5, 6]))
    a.commit()
    assert.equal(Array.from(view), [1, 2, 3, 4])
    assert.equal(values(b, 'x'), [1, 2, 3, 4])
    assert.is(b.array('x').rows, 2)
    b.refresh()
    assert.is(b.serial, 2)
    assert.equal(values(b, 'x'), [10, 2, 3, 4, 5, 6])
    assert.equal(Array.from(view), [10, 2, 3, 4], 'the view shows the new snapshot within its length')
    a.close()
    b.close()
  })

  test('everything of the API: views, write, take, resize, attrs, delete reach the other machine', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    const rows = 3000  // 3000 x 8 bytes: 6 blocks of 4 KiB
    const g = a.create('g', { dtype: 'float64', shape: [rows], blockBytes: 4096, attrs: { unit: 'm' } })
    const v = g.view()
    for (let i = 0; i < rows; i++) v[i] = i
    a.commit()
    g.write([slice(2000, 2010)], 7)
    g.resize([2500])
    g.setAttrs({ unit: 'km', scale: 2 })
    a.commit()
    b.refresh()
    const gb = b.array('g', 'float64')
    assert.equal(gb.shape, [2500])
    assert.equal(gb.attrs, { unit: 'km', scale: 2 })
    const expected = Array.from({ length: 2500 }, (_, i) => (i >= 2000 && i < 2010 ? 7 : i))
    assert.equal(Array.from(gb.read().data), expected)
    assert.equal(Array.from(gb.view()), expected)
    const taken = gb.take([5, 2005, 2499], 1)
    assert.equal(Array.from(taken.data), [5, 7, 2499])
    // Growing again reads zeros past the old end on both machines, never the cut rows.
    g.resize([3000])
    a.commit()
    b.refresh()
    assert.equal(Array.from(b.array('g', 'float64').read([slice(2495, 2505)]).data), [2495, 2496, 2497, 2498, 2499, 0, 0, 0, 0, 0])
    assert.equal(b.list(), ['g'])
    a.delete('g')
    a.commit()
    assert.ok(b.has('g'), 'B still reads its snapshot')
    b.refresh()
    assert.not.ok(b.has('g'))
    assert.equal(b.list(), [])
    a.close()
    b.close()
  })

  test('block conflicts: the loser gets the facts and keeps its changes; appends never conflict; transact() retries', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    a.create('c', { dtype: 'float64', shape: [1024], blockBytes: 4096 })  // two blocks
    a.create('log', { dtype: 'float64', shape: [0] })
    a.commit()
    b.refresh()
    a.array('c', 'float64').write([slice(0, 1)], 1)
    b.array('c', 'float64').write([slice(1, 2)], 2)
    b.array('c', 'float64').write([slice(600, 601)], 3)
    a.commit()
    const conflict = throwsCode(() => b.commit(), ConflictError, 'TXA_CONFLICT')
    assert.is(conflict.array, 'c')
    assert.is(conflict.serial, 2)
    assert.equal(conflict.blocks, [[0, 0]])
    assert.equal(conflict.rows, [[0, 511]])
    assert.ok(b.dirty, 'B keeps its changes')
    assert.is(b.stats().conflicts, 1)
    b.abort()
    assert.equal(Array.from(b.array('c', 'float64').read([slice(0, 2)]).data), [1, 0], "after abort B sees A's commit, none of its writes")

    // Appends from the same snapshot: both land, each commit's rows together.
    a.array('log', 'float64').append(new Float64Array([1, 1]))
    b.array('log', 'float64').append(new Float64Array([2, 2, 2]))
    b.commit()
    a.commit()
    assert.equal(values(a, 'log'), [2, 2, 2, 1, 1], "A's rows rebased after B's")

    // transact(): the first attempt loses to a commit made meanwhile, the retry wins.
    let attempts = 0
    const total = b.transact((s) => {
      attempts++
      const c = s.array('c', 'float64')
      const next = c.read([slice(1000, 1001)]).data[0] + 1
      if (attempts === 1) {
        a.refresh()
        a.array('c', 'float64').write([slice(1000, 1001)], 100)
        a.commit()
      }
      c.write([slice(1000, 1001)], next)
      return next
    })
    assert.is(attempts, 2)
    assert.is(total, 101)
    a.refresh()
    assert.is(a.array('c', 'float64').read([slice(1000, 1001)]).data[0], 101)
    a.close()
    b.close()
  })

  test('commitAsync() and refreshAsync(): the same commit without blocking; the handle refuses changes meanwhile', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    const x = a.create('x', { dtype: 'float64', shape: [0] })
    x.append(new Float64Array([1, 2, 3]))
    const pending = a.commitAsync()
    throwsCode(() => x.append(new Float64Array([4])), TransactionError, 'TXA_TRANSACTION')
    throwsCode(() => a.commit(), TransactionError, 'TXA_TRANSACTION')
    await pending
    assert.is(a.serial, 1)
    assert.equal(values(a, 'x'), [1, 2, 3])
    assert.is(a.stats().commits, 1)
    await b.refreshAsync()
    assert.equal(values(b, 'x'), [1, 2, 3])
    // A conflict rejects the same way commit() throws, changes kept.
    a.array('x', 'float64').write([slice(0, 1)], 9)
    b.array('x', 'float64').write([slice(0, 1)], 8)
    await a.commitAsync()
    await rejectsCode(b.commitAsync(), ConflictError, 'TXA_CONFLICT')
    assert.ok(b.dirty)
    await b.abortAsync()
    assert.equal(values(b, 'x'), [9, 2, 3])
    // transactAsync(): the first attempt loses to a commit made meanwhile, the retry wins.
    let attempts = 0
    const next = await b.transactAsync((s) => {
      attempts++
      const x = s.array('x', 'float64')
      const value = x.read([slice(1, 2)]).data[0] + 1
      if (attempts === 1) {
        a.refresh()
        a.array('x', 'float64').write([slice(1, 2)], 100)
        a.commit()
      }
      x.write([slice(1, 2)], value)
      return value
    })
    assert.equal([attempts, next], [2, 101])
    await a.refreshAsync()
    assert.equal(values(a, 'x'), [9, 101, 3])
    // On a local store the async forms do the same at once.
    const local = open(tempDir())
    assert.is(await local.transactAsync((s) => { s.create('l', { dtype: 'uint8', shape: [1] }); return 7 }), 7)
    assert.is(local.serial, 1)
    local.close()
    a.close()
    b.close()
  })

  test("waitForCommit() and watch() on B report A's commits, each once and in order", async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    const events = b.watch({ keepAlive: true })
    const woken = b.waitForCommit({ timeoutMs: 20_000, keepAlive: true })
    const s = a.create('s', { dtype: 'int32', shape: [0] })
    a.commit()
    assert.is(await woken, 1)
    for (let i = 0; i < 3; i++) {
      s.append(new Int32Array([i, i]))
      a.commit()
    }
    const seen: { serial: number; rows: [number, number] | null | undefined; created: boolean }[] = []
    for await (const e of events) {
      seen.push({ serial: e.serial, rows: e.arrays.s?.appended, created: e.arrays.s?.created ?? false })
      if (seen.length === 4) break
    }
    assert.equal(seen.map((e) => e.serial), [1, 2, 3, 4])
    assert.ok(seen[0].created)
    assert.equal(seen.slice(1).map((e) => e.rows), [[0, 2], [2, 4], [4, 6]])
    b.refresh()
    assert.equal(Array.from(b.array('s', 'int32').read().data), [0, 0, 1, 1, 2, 2])
    a.close()
    b.close()
  })

  test("a commit's own cache holds exactly what the server does: appends through partial blocks, writes, a new array, a delete", async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const t = a.create('t', { dtype: 'uint8', shape: [0, 3], blockBytes: 4096 })  // rows straddle blocks
    a.commit()
    for (let i = 1; i <= 5; i++) {
      t.append(new Uint8Array(3 * 1000).fill(i))
      a.commit()
    }
    t.write([slice(10, 20)], 9)
    a.create('u', { dtype: 'int16', shape: [5000] }).write([slice(4000, 4001)], -1)
    a.commit()
    a.create('gone', { dtype: 'uint8', shape: [8] })
    a.commit()
    a.delete('gone')
    a.commit()
    const b = machine()  // reads everything from the server
    assert.is(b.serial, a.serial)
    assert.equal(b.list(), ['t', 'u'])
    for (const name of ['t', 'u']) {
      assert.equal(Array.from(b.array(name).read().data as ArrayLike<number>), Array.from(a.array(name).read().data as ArrayLike<number>), name)
    }
    assert.ok(a.check().ok, 'the cache written from plans checks clean')
    assert.equal(a.storageStats().blocks, b.storageStats().blocks)
    a.close()
    b.close()
  })

  test('opening: an unreachable server, a cache without remote, a local store as a cache, bad options', async () => {
    const { url, machine } = await remoteStore()
    const started = performance.now()
    throwsCode(() => open(tempDir(), { remote: 'postgres://nobody@127.0.0.1:1/none' }), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
    assert.ok(performance.now() - started < 5000, 'refused at once, not after a timeout')
    const a = machine()
    a.create('z', { dtype: 'uint8', shape: [4] }).write(null, 5)
    a.commit()
    const cache = a.path
    a.close()
    throwsCode(() => open(cache), ArgumentError, 'TXA_ARGUMENT')
    const reader = open(cache, { readOnly: true })
    assert.equal(Array.from(reader.array('z').read().data as Uint8Array), [5, 5, 5, 5], 'the cache reads without the server')
    reader.close()
    const local = open(tempDir())
    local.create('l', { dtype: 'uint8', shape: [1] })
    local.commit()
    local.close()
    throwsCode(() => open(local.path, { remote: url }), FormatError, 'TXA_FORMAT')
    throwsCode(() => open(tempDir(), { remote: 'mysql://x' }), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => open(tempDir(), { remote: url, remoteSchema: 'Bad-Name' }), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => open(tempDir(), { remoteSchema: 'x' }), ArgumentError, 'TXA_ARGUMENT')
  })
}

test.run()
