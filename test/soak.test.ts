// The short crash soak (npm run soak runs the long one): writers SIGKILLed at random
// instants at least 20 times; after each kill every commit is whole, none lost or
// duplicated, and a follower sees each commit once and in order.
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runSoak } from '../soak/run'
import { tempDir } from './helpers/tmp'

test('20 kills of 4 writers: no violation', async () => {
  const lines: string[] = []
  const r = await runSoak({ minutes: 5, kills: 20, writers: 4, dir: path.join(tempDir(), 'soak'), seed: 20261130, log: (l) => lines.push(l) })
  assert.equal(r.violations, [], lines.join('\n'))
  assert.is(r.kills, 20)
  assert.ok(r.commitsVerified >= 20, `${r.commitsVerified} commits verified`)
  assert.ok(r.rowsVerified >= r.commitsVerified)
  assert.ok(r.segmentsVerified > 0)
  // the writers' commits and the checker's one commit after the last kills
  assert.is(r.followerEvents, r.commitsVerified + 1, 'the follower saw every commit')
})

test.run()
