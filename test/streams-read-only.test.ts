// Read-only handles follow a stream like any other (waitForLength, waitForCommit, watch,
// segment lookups); changing segments through them is ReadOnlyError.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ReadOnlyError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

function setup() {
  const dir = tempDir()
  const writer = open(dir)
  writer.create('s', { dtype: 'int32', shape: [0, 2] })
  writer.array('s', 'int32').appendSegment('first', Int32Array.of(1, 2))
  writer.commit()
  const reader = open(dir, { readOnly: true })
  return { writer, reader }
}

test('a read-only handle waits for rows and commits, and watches them', async () => {
  const { writer, reader } = setup()
  const events = reader.watch({ keepAlive: true })
  const length = reader.array('s', 'int32').waitForLength(3, { timeoutMs: 20_000, keepAlive: true })
  const commit = reader.waitForCommit({ timeoutMs: 20_000, keepAlive: true })
  writer.array('s', 'int32').appendSegment('second', Int32Array.of(3, 4, 5, 6))
  writer.commit()
  assert.is(await length, 3)
  assert.is(await commit, writer.serial)
  const { value } = await events.next()
  assert.is(value?.serial, writer.serial)
  assert.equal(value?.arrays.s.appended, [1, 3])
  assert.is(value?.arrays.s.segments, true)
  await events.return?.()
  reader.refresh()
  assert.equal(reader.array('s', 'int32').segmentRange('second'), { name: 'second', start: 1, stop: 3 })
  assert.equal([...reader.array('s', 'int32').segment('second')], [3, 4, 5, 6])
  writer.close()
  reader.close()
})

test('appendSegment and deleteSegment on a read-only handle are ReadOnlyError and change nothing', () => {
  const { writer, reader } = setup()
  const a = reader.array('s', 'int32')
  throwsCode(() => a.appendSegment('x', Int32Array.of(1, 2)), ReadOnlyError, 'TXA_READ_ONLY')
  throwsCode(() => a.deleteSegment('first'), ReadOnlyError, 'TXA_READ_ONLY')
  assert.is(a.rows, 1)
  assert.equal([...a.segments()], [{ name: 'first', start: 0, stop: 1 }])
  assert.is(reader.dirty, false)
  writer.close()
  reader.close()
})

test.run()
