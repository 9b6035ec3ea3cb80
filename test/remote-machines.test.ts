// Several machines as separate processes, each with a cache of its own, on one remote
// store: concurrent appends and contended writes, a machine killed mid-commit, and the
// server crashing (-m immediate) and coming back mid-stream.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from 'pg'
import { CommitOutcomeUnknownError, RemoteUnavailableError, type Store } from '../src/index'
import { finished, startChild } from './helpers/child'
import { testPostgres } from './helpers/postgres'
import { rejectsCode, throwsCode } from './helpers/expect'
import { remoteStores, serverIdle, someoneWaitsForLock } from './helpers/remote-stores'
import { tempDir } from './helpers/tmp'

const found = testPostgres()

if ('skipped' in found) {
  console.log(`remote-machines: skipped (${found.skipped})`)
  test.skip('several machines as processes', () => undefined)
} else {
  const server = found.server
  const remoteStore = remoteStores(server, 'm')

  test('4 machines append concurrently and contend for one block: every row once, each commit contiguous, no increment lost', async () => {
    const { url, schema, machine } = await remoteStore()
    const p = machine()
    p.create('rows', { dtype: 'int32', shape: [0, 3] })
    p.create('count', { dtype: 'int32', shape: [1] })
    p.commit()
    const commits = 4
    const outputs = await Promise.all([0, 1, 2, 3].map((m) =>
      finished(startChild('remote-machine.child.ts', ['append', url, schema, tempDir(), String(m), String(commits)]))))
    const conflicts = outputs.map((o) => Number(/done (\d+)/.exec(o)?.[1]))
    p.refresh()
    const data = p.array('rows', 'int32').read().data as Int32Array
    const seen = new Map<string, number>()
    let expected = 0
    for (let m = 0; m < 4; m++) for (let c = 0; c < commits; c++) expected += 1 + ((m + c) % 5)
    assert.is(data.length / 3, expected, 'every row is there')
    for (let i = 0; i < data.length / 3;) {
      const [m, c] = [data[i * 3], data[i * 3 + 1]]
      const key = `${m}/${c}`
      assert.not.ok(seen.has(key), `commit ${key} appears once`)
      const n = 1 + ((m + c) % 5)
      for (let r = 0; r < n; r++, i++) {
        assert.equal([data[i * 3], data[i * 3 + 1], data[i * 3 + 2]], [m, c, r], `commit ${key}: its rows together, in order`)
      }
      seen.set(key, n)
    }
    assert.is(seen.size, 4 * commits)
    assert.is((p.array('count', 'int32').read().data as Int32Array)[0], 4 * commits, 'transact() retried every conflicting increment')
    assert.ok(conflicts.every((n) => Number.isInteger(n)))
    p.close()
  })

  test('kill -9 of a machine mid-commit: every machine sees whole commits only, the killed cache included', async () => {
    const { url, schema, machine } = await remoteStore()
    const p = machine()
    p.create('stamps', { dtype: 'int32', shape: [4096], blockBytes: 4096 })  // 4 blocks
    p.commit()
    const cache = tempDir()
    const child = startChild('remote-machine.child.ts', ['stamp', url, schema, cache])
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    let out = ''
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (/commit 4\b/.test(out)) resolve()
    }))
    await new Promise((r) => setTimeout(r, Math.random() * 10))
    child.kill('SIGKILL')
    assert.is(await exited, 'SIGKILL')
    // A commit the killed machine had sent may still land: what landed is decided once the
    // server has finished every statement.
    const admin = new Client({ connectionString: url })
    await admin.connect()
    try {
      await serverIdle(admin)
    } finally {
      await admin.end()
    }
    const uniform = (s: Store) => {
      s.refresh()
      const values = new Set(s.array('stamps', 'int32').read().data as Int32Array)
      assert.is(values.size, 1, 'one commit, whole')
      return [...values][0]
    }
    const k = uniform(p)
    assert.ok(k >= 3, `the commits before the kill landed (saw ${k})`)
    const restarted = machine(cache)
    assert.is(uniform(restarted), k, "the killed machine's cache, reopened, agrees")
    assert.is(restarted.serial, p.serial)
    restarted.close()
    p.close()
  })

  test('the connection lost while the commit waits inside the server, which is down: in doubt, then settled exactly once', async () => {
    if (!server.owned) return
    const { url, schema, machine } = await remoteStore()
    const a = machine()
    const s = a.create('s', { dtype: 'int32', shape: [0] })
    a.commit()
    s.append(new Int32Array([1, 2, 3]))
    // Another session holds the array's row: the commit reaches the server and waits there.
    const blocker = new Client({ connectionString: url })
    blocker.on('error', () => undefined)
    await blocker.connect()
    await blocker.query('BEGIN')
    await blocker.query(`SELECT 1 FROM ${schema}.arrays FOR UPDATE`)
    const pending = a.commitAsync()
    assert.ok(await someoneWaitsForLock(blocker), 'the commit waits inside the server')
    server.stop('immediate')
    let doubt: CommitOutcomeUnknownError
    try {
      doubt = await rejectsCode(pending, CommitOutcomeUnknownError, 'TXA_COMMIT_UNKNOWN')
      assert.match(doubt.commitId ?? '', /^[0-9a-f-]{36}$/)
      const inDoubt = throwsCode(() => s.append(new Int32Array([4])), CommitOutcomeUnknownError, 'TXA_COMMIT_UNKNOWN')
      assert.is(inDoubt.commitId, doubt.commitId, 'changes wait until the doubt is settled')
      assert.equal(Array.from(s.read().data as Int32Array), [1, 2, 3], 'the changes are kept')
    } finally {
      server.start()
      await blocker.end().catch(() => undefined)
    }
    a.commit()  // looks the commit up (it died with the server), fences its id, commits anew
    assert.equal(Array.from(s.read().data as Int32Array), [1, 2, 3])
    s.append(new Int32Array([4]))
    a.commit()
    const b = machine()
    assert.equal(Array.from(b.array('s', 'int32').read().data as Int32Array), [1, 2, 3, 4], 'landed exactly once')
    a.close()
    b.close()
  })

  test('PostgreSQL stopped with -m immediate mid-stream and restarted: nothing committed is lost, nothing lands twice', async () => {
    if (!server.owned) return
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    const s = a.create('s', { dtype: 'int32', shape: [0] })
    a.create('other', { dtype: 'int32', shape: [4] })
    a.commit()
    for (let i = 0; i < 5; i++) {
      s.append(new Int32Array([i]))
      a.commit()
    }
    b.refresh()
    const view = b.array('s', 'int32').view()
    // A commit on its way when the server dies.
    s.append(new Int32Array([5]))
    const inFlight = a.commitAsync()
    server.stop('immediate')
    let outcome = 'landed'
    try {
      await inFlight
    } catch (e) {
      assert.ok(e instanceof RemoteUnavailableError || e instanceof CommitOutcomeUnknownError, String(e))
      outcome = (e as RemoteUnavailableError).code
    }
    try {
      // While the server is away: B reads its snapshot from its cache, its refresh fails coded.
      assert.equal(Array.from(view), [0, 1, 2, 3, 4])
      assert.equal(Array.from(b.array('s', 'int32').read().data as Int32Array), [0, 1, 2, 3, 4])
      throwsCode(() => b.refresh(), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
      // A commit while the server is down: refused before anything is sent, changes kept.
      b.array('other', 'int32').write(null, 8)
      throwsCode(() => b.commit(), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
      assert.ok(b.dirty)
      if (outcome !== 'landed') {
        // The changes are kept (or in doubt): committing again fails the same coded ways.
        try {
          a.commit()
          assert.unreachable('the server is down')
        } catch (e) {
          assert.ok(e instanceof RemoteUnavailableError || e instanceof CommitOutcomeUnknownError, String(e))
        }
      }
    } finally {
      server.start()
    }
    // Back: commit() again settles the commit in flight, exactly once.
    a.commit()
    s.append(new Int32Array([6]))
    a.commit()
    assert.equal(Array.from(s.read().data as Int32Array), [0, 1, 2, 3, 4, 5, 6])
    const woken = await b.waitForCommit({ timeoutMs: 20_000, keepAlive: true })
    assert.ok(woken >= 7, "B's follower reconnected and caught up")
    b.commit()  // the changes kept while the server was down
    assert.equal(Array.from(b.array('other', 'int32').read().data as Int32Array), [8, 8, 8, 8])
    assert.equal(Array.from(b.array('s', 'int32').read().data as Int32Array), [0, 1, 2, 3, 4, 5, 6])
    assert.equal(Array.from(view), [0, 1, 2, 3, 4], 'the view keeps its length')
    a.close()
    b.close()
  })
}

test.run()
