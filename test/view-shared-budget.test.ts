// Every handle of a process that sets no `mappings` shares the process's mapping budget,
// worker threads included, since vm.max_map_count bounds the process. TXARRAY_MAPPINGS
// sets its limit when it is created; setProcessMappings() later. Measured in child
// processes, so that the environment, the budget and /proc/self/maps are theirs alone.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, open, processMappings, setProcessMappings } from '../src/index'
import { finished, startChild } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

interface Report { name: string, reads: number, writes: number, commits: number, wrong: string[], peakMaps: number, mappingsLimit: number }

async function inChild(args: string[], env: Record<string, string>): Promise<string[]> {
  const out = await finished(startChild('shared-budget.child.ts', args, env))
  return out.trim().split('\n')
}

test('handles on this thread and in 3 worker threads share a budget of 64 mappings: values right, writes committed exactly, /proc/self/maps bounded', async () => {
  const limit = 64
  const lines = await inChild(['run', tempDir(), '3', '300'], { TXARRAY_MAPPINGS: String(limit) })
  const r = JSON.parse(lines.at(-1)!) as { before: number, peakGrowth: number, figures: Record<string, number>, reports: Report[] }
  assert.is(r.reports.length, 5, 'two handles here, one in each worker')
  for (const rep of r.reports) {
    assert.is(rep.mappingsLimit, limit, `${rep.name} shares the process's budget`)
    assert.equal(rep.wrong, [], `${rep.name}: every value read and committed is right`)
    assert.ok(rep.writes > 0 && rep.commits > 1, `${rep.name} wrote through views and committed`)
  }
  // 5 arrays of 96 blocks: 480 blocks through a budget of 64 mappings
  assert.is(r.figures.limit, limit)
  assert.ok(r.figures.evictedBlocks > 100, `blocks were unmapped to stay within the budget: ${r.figures.evictedBlocks}`)
  assert.is(r.figures.mappedBlocks, 0, 'every handle closed: nothing stays mapped')
  assert.is(r.figures.mappings, 0)
  // Each of the 4 threads may have a fault in flight mapping one window (4 blocks, 5
  // mappings) past the room it made; the rest: the 5 regions' own reservations (made at
  // their first view) and the JavaScript heaps growing meanwhile (measured: 100 to 110 in all).
  const info = `maps ${r.before} when ready, peak +${r.peakGrowth}; ${r.figures.evictedBlocks} evicted, ${r.figures.spilledBlocks} spilled`
  assert.ok(r.peakGrowth <= limit + 4 * 5 + 64, `/proc/self/maps within the budget plus a constant (${info})`)
})

test('TXARRAY_MAPPINGS sets the limit of the process budget; anything but a whole number from 1 to 2147483647 is refused with ArgumentError at open()', async () => {
  const dir = tempDir()
  const ok = (await inChild(['limit', dir], { TXARRAY_MAPPINGS: '1234' })).map((l) => JSON.parse(l))
  assert.equal(ok, [{ limit: 1234 }, { opened: true }])
  for (const bad of ['0', '-5', '12x', ' 12', '1e3', '', '2147483648', '99999999999999999999']) {
    const [figures, opened] = (await inChild(['limit', dir], { TXARRAY_MAPPINGS: bad })).map((l) => JSON.parse(l))
    assert.is(figures.code, 'TXA_ARGUMENT', `processMappings() with TXARRAY_MAPPINGS=${JSON.stringify(bad)}`)
    assert.is(opened.openError, 'ArgumentError', `open() with TXARRAY_MAPPINGS=${JSON.stringify(bad)}`)
    assert.is(opened.code, 'TXA_ARGUMENT')
    assert.match(opened.message, /TXARRAY_MAPPINGS/)
  }
})

test("setProcessMappings() sets the limit every sharing handle has, not a handle's own; refuses what is not a limit", () => {
  const was = processMappings().limit
  const shared = open(tempDir())
  const own = open(tempDir(), { mappings: 100 })
  try {
    setProcessMappings(777)
    assert.is(processMappings().limit, 777)
    assert.is(shared.stats().mappingsLimit, 777)
    assert.is(own.stats().mappingsLimit, 100)
    for (const bad of [0, -1, 1.5, NaN, 2 ** 31, '10' as unknown as number]) {
      throwsCode(() => setProcessMappings(bad), ArgumentError, 'TXA_ARGUMENT')
    }
    assert.is(processMappings().limit, 777, 'a refused limit changes nothing')
  } finally {
    setProcessMappings(was)
    shared.close()
    own.close()
  }
})

test('lowering the process budget under views that hold more: the next faults bring the mappings back within it', () => {
  const was = processMappings().limit
  const store = open(tempDir(), { sync: false })
  try {
    const a = store.create<'uint8'>('x', { dtype: 'uint8', shape: [512 * 65536], blockBytes: 65536 })
    const v = a.view()
    let sum = 0
    for (let b = 0; b < 256; b += 2) sum += v[b * 65536] // the first half mapped: about 257 mappings
    const held = processMappings().mappings
    assert.ok(held >= 200, `${held} mappings held`)
    setProcessMappings(40)
    assert.is(processMappings().mappings, held, 'nothing is unmapped at once')
    for (let b = 300; b < 512; b += 16) sum += v[b * 65536] // 14 faults in the other half
    assert.is(sum, 0)
    assert.ok(processMappings().mappings <= 40 + 5, `${processMappings().mappings} mappings after 14 faults`)
  } finally {
    setProcessMappings(was)
    store.close()
  }
})

test.run()
