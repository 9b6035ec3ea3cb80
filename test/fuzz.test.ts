// A short run of the API fuzzer (test/fuzz/fuzzer.ts; `npm run fuzz` runs long ones):
// thousands of random and hostile calls with no uncoded error and every read agreeing with
// the model of what was committed and what the transaction holds.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runFuzz } from './fuzz/fuzzer'
import { tempDir } from './helpers/tmp'

for (const seed of [11, 12]) {
  test(`fuzz seed ${seed}: 2500 calls, no uncoded error, no mismatch`, () => {
    const stats = runFuzz({ dir: tempDir(), seed, calls: 2500 })
    assert.equal(stats.problems, [], 'problems')
    assert.is(stats.uncoded, 0)
    assert.is(stats.mismatches, 0)
    assert.ok(stats.calls >= 2500, `${stats.calls} calls`)
    assert.ok(stats.codedErrors > 500, `the hostile calls were refused (${stats.codedErrors} coded errors)`)
  })
}

test.run()
