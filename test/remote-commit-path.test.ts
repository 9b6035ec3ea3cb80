// The whole commit path of a remote store over the real engine, below the public API: a
// machine writes through a view of its cache, the engine plans the commit, the link
// stores it in PostgreSQL, catch-up settles it into every cache, and handles move to it;
// the machine that lost a block conflict gets the facts, aborts and retries.
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ConflictError } from '../src/index'
import { addon } from '../src/binding'
import { encodeFormat, encodeMeta } from '../src/metadata'
import { contributionOf } from '../src/remote/plan-array'
import { RemoteLink } from '../src/remote/remote-link'
import { testPostgres } from './helpers/postgres'
import { tempDir } from './helpers/tmp'

const found = testPostgres()
const BLOCK = 4096
const ROW = 32
const RPB = BLOCK / ROW

if ('skipped' in found) {
  console.log(`remote-commit-path: skipped (${found.skipped})`)
  test.skip('the commit path of a remote store', () => undefined)
} else {
  test('plan, store, settle: A commits from a view; B conflicts on the same block, gets the facts, retries', async () => {
    const database = await found.server.freshDatabase()
    const schema = `p_${randomBytes(5).toString('hex')}`
    const machine = (cache: string) => new RemoteLink(database, { schema, cache })
    const [cacheA, cacheB] = [tempDir(), tempDir()]
    const [linkA, linkB] = [machine(cacheA), machine(cacheB)]
    try {
      linkA.openSync()
      linkB.openSync()
      const body = encodeMeta({ dtype: 'float64', shape: [4 * RPB, 4], blockBytes: BLOCK, attrs: {}, created: 0 })
      const made = linkA.commitSync({
        commitId: randomUUID(), snapshot: 0, blocks: [],
        records: [{ name: 'g', id: 0, expectedSerial: 0, rows: 4 * RPB, rowBytes: ROW, blockBytes: BLOCK, body }],
      })
      const id = made.status === 'committed' ? made.ids[0] : 0
      linkA.catchUpSync()
      linkB.catchUpSync()
      const open = (dir: string) => new addon.NativeSession(dir, undefined, undefined, 64, { create: false, readOnly: false, format: encodeFormat() })
      const [sessionA, sessionB] = [open(cacheA), open(cacheB)]
      const track = (s: typeof sessionA) => s.track(id, BLOCK, 4 * RPB * ROW, 'g')
      const [arrayA, arrayB] = [track(sessionA), track(sessionB)]
      const viewA = new Float64Array(arrayA.view(0, arrayA.byteLength))
      const viewB = new Float64Array(arrayB.view(0, arrayB.byteLength))
      assert.is(sessionA.serial, 1)
      assert.is(sessionB.serial, 1)

      viewA[RPB * 4] = 11      // block 1
      viewB[RPB * 4 + 1] = 22  // block 1 too
      viewB[3 * RPB * 4] = 33  // and block 3

      // A: plan -> store -> settle.
      const planA = contributionOf(id, arrayA.plan())
      const storedA = linkA.commitSync({ commitId: randomUUID(), snapshot: sessionA.serial, records: [], blocks: planA.blocks })
      assert.equal(storedA.status === 'committed' && storedA.serial, 2)
      assert.is(linkA.catchUpSync(), 2)
      sessionA.refresh()
      assert.is(sessionA.serial, 2)
      assert.is(viewA[RPB * 4], 11, 'A reads its commit back from its cache')

      // B: the same block loses, with the local engine's facts; nothing of B landed.
      let conflict: unknown
      try {
        linkB.commitSync({ commitId: randomUUID(), snapshot: sessionB.serial, records: [], blocks: contributionOf(id, arrayB.plan()).blocks })
      } catch (e) {
        conflict = e
      }
      assert.instance(conflict, ConflictError)
      assert.is((conflict as ConflictError).serial, 2)
      assert.equal((conflict as ConflictError).blocks, [[1, 1]])
      assert.equal((conflict as ConflictError).rows, [[RPB, 2 * RPB - 1]])
      // B aborts: catch up, move on; its view shows A's commit and none of its own writes.
      linkB.catchUpSync()
      sessionB.refresh()
      assert.is(sessionB.serial, 2)
      assert.equal([viewB[RPB * 4], viewB[RPB * 4 + 1], viewB[3 * RPB * 4]], [11, 0, 0])
      // B retries the part that did not conflict.
      viewB[3 * RPB * 4] = 33
      const retried = linkB.commitSync({ commitId: randomUUID(), snapshot: sessionB.serial, records: [], blocks: contributionOf(id, arrayB.plan()).blocks })
      assert.equal(retried.status === 'committed' && retried.serial, 3)
      linkA.catchUpSync()
      sessionA.refresh()
      assert.equal([viewA[RPB * 4], viewA[3 * RPB * 4]], [11, 33], "A sees B's retried commit")
      sessionA.close()
      sessionB.close()
    } finally {
      await linkA.close()
      await linkB.close()
    }
  })
}

test.run()
