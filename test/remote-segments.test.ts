// Named segments on a remote store: machines (handles with caches of their own, and
// processes) append, look up, list and delete segments of one array through PostgreSQL,
// under the rules of a local store: concurrent segment appends rebase and never conflict,
// a name is taken once, a delete of a segment another commit deleted is a conflict.
import { Client } from 'pg'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AlreadyExistsError, ConflictError, type Segment, type Store } from '../src/index'
import { collectHistory } from '../src/remote/retention'
import { finished, startChild } from './helpers/child'
import { testPostgres } from './helpers/postgres'
import { throwsCode } from './helpers/expect'
import { clientsAtHead, remoteStores } from './helpers/remote-stores'
import { tempDir } from './helpers/tmp'

const found = testPostgres()

/**
 * Checks that the segments of int32 'log' (rows [machine, commit, row]) name exactly the
 * rows their writer appended, contiguous, each once, and that they tile the array.
 */
function checkSegments(s: Store, expected: Map<string, number>): void {
  const log = s.array('log', 'int32')
  const listed = [...log.segments()]
  assert.equal(listed.map((g) => g.name).sort(), [...expected.keys()].sort(), 'every segment once')
  let end = 0
  for (const g of listed) {
    assert.is(g.start, end, `segment ${g.name} follows the one before (row order, no gap)`)
    end = g.stop
    assert.equal(log.segmentRange(g.name), g, 'looked up by name as listed')
    const [, m, c] = /^m(\d+)-c(\d+)$/.exec(g.name)!.map(Number)
    const rows = log.segment(g.name) as Int32Array
    assert.is(rows.length / 3, expected.get(g.name), `segment ${g.name}: its row count`)
    for (let r = 0; r < rows.length / 3; r++) {
      assert.equal([rows[r * 3], rows[r * 3 + 1], rows[r * 3 + 2]], [m, c, r], `segment ${g.name}: its own rows`)
    }
  }
  assert.is(end, log.rows, 'the segments cover the array')
}

if ('skipped' in found) {
  console.log(`remote-segments: skipped (${found.skipped})`)
  test.skip('named segments on a remote store', () => undefined)
} else {
  const server = found.server
  const remoteStore = remoteStores(server, 'g')

  test('a segment appended on A is looked up, viewed and listed on B after refresh, and not before', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    const x = a.create('x', { dtype: 'int32', shape: [0, 2] })
    x.appendSegment('first', new Int32Array([1, 1, 2, 2]))
    a.commit()
    assert.equal(x.segmentRange('first'), { name: 'first', start: 0, stop: 2 }, 'A reads its own commit back')
    b.refresh()
    x.appendSegment('second', new Int32Array([3, 3]))
    x.appendSegment('dritte – ü', new Int32Array([4, 4, 5, 5]))
    a.commit()
    const xb = b.array('x', 'int32')
    assert.is(xb.segmentRange('second'), null, "B's snapshot is older")
    assert.equal([...xb.segments()], [{ name: 'first', start: 0, stop: 2 }])
    b.refresh()
    assert.equal([...xb.segments()], [
      { name: 'first', start: 0, stop: 2 }, { name: 'second', start: 2, stop: 3 }, { name: 'dritte – ü', start: 3, stop: 5 },
    ])
    assert.equal(Array.from(xb.segment('dritte – ü')), [4, 4, 5, 5])
    // B deletes one; A sees it gone after refresh, and may take the name again.
    xb.deleteSegment('second')
    b.commit()
    a.refresh()
    assert.is(x.segmentRange('second'), null)
    x.appendSegment('second', new Int32Array([6, 6]))
    a.commit()
    b.refresh()
    assert.equal(xb.segmentRange('second'), { name: 'second', start: 5, stop: 6 })
    assert.equal(Array.from(xb.segment('second')), [6, 6])
    // A machine opened later (an empty cache) reads them all from the catch-up.
    const c = machine()
    assert.equal([...c.array('x').segments()].map((g: Segment) => g.name), ['first', 'dritte – ü', 'second'])
    a.close()
    b.close()
    c.close()
  })

  test('segments appended concurrently by 3 handles rebase: each lands once, contiguous, with its rows', async () => {
    const { machine } = await remoteStore()
    const p = machine()
    p.create('log', { dtype: 'int32', shape: [0, 3], blockBytes: 4096 })
    p.commit()
    const machines = [machine(), machine(), machine()]
    const expected = new Map<string, number>()
    for (let round = 0; round < 3; round++) {
      // Every machine appends at the end its snapshot shows; the commits rebase them.
      machines.forEach((m, i) => {
        const n = 1 + ((i + round) % 4) * 150  // up to 451 rows: segments across block edges
        const rows = new Int32Array(n * 3)
        for (let r = 0; r < n; r++) rows.set([i, round, r], r * 3)
        m.array('log', 'int32').appendSegment(`m${i}-c${round}`, rows)
        expected.set(`m${i}-c${round}`, n)
      })
      for (const m of machines) m.commit()
      // Each committing machine's own cache holds the rebased ranges.
      checkSegments(machines[2], new Map([...expected].filter(([name]) => Number(/-c(\d+)$/.exec(name)![1]) <= round)))
    }
    p.refresh()
    checkSegments(p, expected)
    for (const m of machines) {
      m.refresh()
      checkSegments(m, expected)
      m.close()
    }
    p.close()
  })

  test('4 machines (processes) append segments to one array concurrently: every segment once, contiguous, its own rows', async () => {
    const { url, schema, machine } = await remoteStore()
    const p = machine()
    p.create('log', { dtype: 'int32', shape: [0, 3] })
    p.commit()
    const commits = 6
    await Promise.all([0, 1, 2, 3].map((m) =>
      finished(startChild('remote-segments.child.ts', [url, schema, tempDir(), String(m), String(commits)]))))
    const expected = new Map<string, number>()
    for (let m = 0; m < 4; m++) for (let c = 0; c < commits; c++) expected.set(`m${m}-c${c}`, 1 + ((m + c) % 5))
    p.refresh()
    checkSegments(p, expected)
    p.close()
  })

  test('a name another machine took first: TXA_EXISTS at commit, nothing committed', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    a.create('x', { dtype: 'int32', shape: [0] })
    a.commit()
    b.refresh()
    a.array('x', 'int32').appendSegment('same', new Int32Array([1]))
    const xb = b.array('x', 'int32')
    xb.appendSegment('same', new Int32Array([2, 2]))
    xb.append(new Int32Array([3]))
    a.commit()
    const serial = a.serial
    throwsCode(() => b.commit(), AlreadyExistsError, 'TXA_EXISTS')
    a.refresh()
    assert.is(a.serial, serial, 'the refused commit left nothing')
    assert.equal(Array.from(a.array('x', 'int32').read().data), [1])
    b.abort()
    assert.equal(xb.segmentRange('same'), { name: 'same', start: 0, stop: 1 })
    xb.appendSegment('other', new Int32Array([2, 2]))
    b.commit()
    assert.equal(xb.segmentRange('other'), { name: 'other', start: 1, stop: 3 })
    a.close()
    b.close()
  })

  test('deleting a segment another machine deleted or replaced is a conflict; deleting the array deletes its segments everywhere', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    a.create('x', { dtype: 'int32', shape: [0] }).appendSegment('s', new Int32Array([1, 1]))
    a.commit()
    b.refresh()
    a.array('x').deleteSegment('s')
    b.array('x').deleteSegment('s')
    a.commit()
    const conflict = throwsCode(() => b.commit(), ConflictError, 'TXA_CONFLICT')
    assert.is(conflict.array, 'x')
    assert.match(conflict.message, /segment 's' of array 'x' was deleted or replaced/)
    b.abort()
    // Replaced: deleted and taken again for other rows; a delete of the old range conflicts.
    a.array('x', 'int32').appendSegment('s', new Int32Array([2]))
    a.commit()
    b.refresh()
    a.array('x').deleteSegment('s')
    a.array('x', 'int32').appendSegment('s', new Int32Array([3]))
    a.commit()
    b.array('x').deleteSegment('s')
    throwsCode(() => b.commit(), ConflictError, 'TXA_CONFLICT')
    b.abort()
    assert.equal(b.array('x').segmentRange('s'), { name: 's', start: 3, stop: 4 })
    // transact() retries a conflicting delete from the newest snapshot.
    let tries = 0
    b.transact((s) => {
      tries++
      const x = s.array('x', 'int32')
      if (x.segmentRange('s')) x.deleteSegment('s')
      if (tries === 1) {
        a.array('x').deleteSegment('s')
        a.commit()
      }
      x.appendSegment('s2', new Int32Array([4]))
    })
    assert.is(tries, 2, 'the conflicting delete was retried once')
    a.refresh()
    assert.equal([...a.array('x').segments()], [{ name: 's2', start: 4, stop: 5 }])
    a.delete('x')
    a.commit()
    a.create('x', { dtype: 'int32', shape: [0] }).appendSegment('t', new Int32Array([9]))
    a.commit()
    b.refresh()
    assert.equal([...b.array('x').segments()], [{ name: 't', start: 0, stop: 1 }], "only the new array's segment")
    a.close()
    b.close()
  })

  test('a cache older than the remote history is rebuilt with the segments the server has, deleted names gone', async () => {
    const { url, schema, machine } = await remoteStore()
    const a = machine()
    const cacheB = tempDir()
    let b = machine(cacheB)
    a.create('x', { dtype: 'int32', shape: [0] }).appendSegment('s1', new Int32Array([1]))
    a.commit()
    a.array('x', 'int32').appendSegment('s2', new Int32Array([2, 2]))
    a.commit()
    b.refresh()
    assert.equal([...b.array('x').segments()].map((g: Segment) => g.name), ['s1', 's2'])
    b.close()
    a.array('x').deleteSegment('s2')
    a.array('x', 'int32').appendSegment('s3', new Int32Array([3]))
    a.commit()
    a.array('x', 'int32').appendSegment('s4', new Int32Array([4]))
    a.commit()
    const admin = new Client({ connectionString: url })
    await admin.connect()
    try {
      await clientsAtHead(admin, schema)  // B's row gone, A's at its last commit: nothing holds the history
      await collectHistory(admin, { keepCommits: 0 }, schema)
      const kept = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.segments WHERE deleted`)
      assert.is(kept.rows[0].n, 0, 'the deleted name left the server with the history')
    } finally {
      await admin.end()
    }
    b = machine(cacheB)
    assert.equal([...b.array('x').segments()], [
      { name: 's1', start: 0, stop: 1 }, { name: 's3', start: 3, stop: 4 }, { name: 's4', start: 4, stop: 5 },
    ])
    assert.is(b.array('x').segmentRange('s2'), null)
    a.close()
    b.close()
  })

  test('a store of the format before segments (2) is upgraded in place at open, its arrays kept', async () => {
    const { url, schema, machine } = await remoteStore()
    const a = machine()
    a.create('x', { dtype: 'int32', shape: [0] }).append(new Int32Array([7, 8]))
    a.commit()
    a.close()
    // What format 2 lacked: the segments table, and what 4 added (its functions are replaced wholesale).
    const client = new Client({ connectionString: url })
    await client.connect()
    try {
      await client.query(`DROP TABLE ${schema}.segments`)
      await client.query(`DROP TABLE ${schema}.clients; ALTER TABLE ${schema}.head DROP COLUMN ids_pruned`)
      await client.query(`UPDATE ${schema}.meta SET value = '{"name": "txarray-remote", "version": 2}' WHERE key = 'format'`)
    } finally {
      await client.end()
    }
    const b = machine()
    assert.equal(Array.from(b.array('x', 'int32').read().data), [7, 8])
    b.array('x', 'int32').appendSegment('s', new Int32Array([9]))
    b.commit()
    const c = machine()
    assert.equal(c.array('x').segmentRange('s'), { name: 's', start: 2, stop: 3 })
    b.close()
    c.close()
  })

  test("watch() on B reports A's segment commits (segments: true), deletes included", async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    const events = b.watch({ keepAlive: true })
    a.create('x', { dtype: 'int32', shape: [0] })
    a.commit()
    a.array('x', 'int32').appendSegment('s', new Int32Array([1, 2]))
    a.commit()
    a.array('x').deleteSegment('s')
    a.commit()
    const seen: { serial: number; segments: boolean; appended: [number, number] | null | undefined }[] = []
    for await (const e of events) {
      seen.push({ serial: e.serial, segments: e.arrays.x?.segments ?? false, appended: e.arrays.x?.appended })
      if (seen.length === 3) break
    }
    assert.equal(seen.map((e) => [e.serial, e.segments]), [[1, false], [2, true], [3, true]])
    assert.equal(seen[1].appended, [0, 2])
    a.close()
    b.close()
  })
}

test.run()
