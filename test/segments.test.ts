// Named segments: appendSegment() appends rows and names them in the same commit; names
// are unique per array, decided at commit; concurrent segment appends are rebased.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AlreadyExistsError, ArgumentError, BoundsError, ConflictError, NotFoundError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

function store() {
  const dir = tempDir()
  const s = open(dir)
  s.create('x', { dtype: 'int32', shape: [0, 2] })
  s.commit()
  return { dir, s }
}

test('appendSegment names the rows it appends; segment() views them; segments() lists in row order', () => {
  const { s } = store()
  const x = s.array('x', 'int32')
  x.append(new Int32Array([0, 0]))
  x.appendSegment('first', new Int32Array([1, 1, 2, 2]))
  x.appendSegment('second', new Int32Array([3, 3]))
  assert.equal([...x.segment('first')], [1, 1, 2, 2], 'visible in the transaction')
  s.commit()
  x.appendSegment('third', new Int32Array([4, 4]))
  assert.equal([...x.segments()], [
    { name: 'first', start: 1, stop: 3 }, { name: 'second', start: 3, stop: 4 }, { name: 'third', start: 4, stop: 5 },
  ])
  assert.equal(x.segmentRange('second'), { name: 'second', start: 3, stop: 4 })
  assert.is(x.segmentRange('nope'), null)
  s.abort()
  assert.equal([...x.segments()].map((g) => g.name), ['first', 'second'], 'abort drops the uncommitted segment')
  assert.equal([...x.segment('second')], [3, 3])
  assert.is(x.rows, 4)
  s.close()
})

test('deleteSegment removes the name, not the rows; the name can be used again', () => {
  const { dir, s } = store()
  const x = s.array('x', 'int32')
  x.appendSegment('a', new Int32Array([1, 1]))
  x.appendSegment('b', new Int32Array([2, 2]))
  s.commit()
  x.deleteSegment('a')
  throwsCode(() => x.segment('a'), NotFoundError, 'TXA_NOT_FOUND')
  x.appendSegment('a', new Int32Array([3, 3]))
  s.commit()
  const other = open(dir)
  assert.equal([...other.array('x').segments()], [{ name: 'b', start: 1, stop: 2 }, { name: 'a', start: 2, stop: 3 }])
  assert.is(other.array('x').rows, 3)
  other.close()
  throwsCode(() => x.deleteSegment('zzz'), NotFoundError, 'TXA_NOT_FOUND')
  s.close()
})

test('a duplicate name throws TXA_EXISTS at the call, or at commit when another commit took it first', () => {
  const { dir, s } = store()
  const x = s.array('x', 'int32')
  x.appendSegment('a', new Int32Array([1, 1]))
  throwsCode(() => x.appendSegment('a', new Int32Array([2, 2])), AlreadyExistsError, 'TXA_EXISTS')
  s.commit()
  throwsCode(() => x.appendSegment('a', new Int32Array([2, 2])), AlreadyExistsError, 'TXA_EXISTS')

  const p = open(dir)
  const q = open(dir)
  p.array('x', 'int32').appendSegment('race', new Int32Array([5, 5]))
  q.array('x', 'int32').appendSegment('race', new Int32Array([6, 6]))
  p.commit()
  throwsCode(() => q.commit(), AlreadyExistsError, 'TXA_EXISTS')
  q.abort()
  assert.equal([...q.array('x').segment('race')], [5, 5])
  assert.is(q.array('x').rows, 2, 'the failed commit changed nothing')
  throwsCode(() => x.appendSegment('', new Int32Array([1, 1])), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => x.appendSegment('\ud800', new Int32Array([1, 1])), ArgumentError, 'TXA_ARGUMENT')
  p.close()
  q.close()
  s.close()
})

test('concurrent segment appends of two handles do not conflict: rows and ranges are rebased', () => {
  const { dir, s } = store()
  const p = open(dir)
  const q = open(dir)
  for (let round = 0; round < 5; round++) {
    p.array('x', 'int32').appendSegment(`p${round}`, new Int32Array([round, 1, round, 1]))
    q.array('x', 'int32').appendSegment(`q${round}`, new Int32Array([round, 2]))
    p.commit()
    q.commit()
  }
  s.refresh()
  const x = s.array('x', 'int32')
  assert.is(x.rows, 15)
  for (let round = 0; round < 5; round++) {
    assert.equal([...x.segment(`p${round}`)], [round, 1, round, 1])
    assert.equal([...x.segment(`q${round}`)], [round, 2])
  }
  const all = [...x.segments()]
  assert.is(all.length, 10)
  for (let i = 1; i < all.length; i++) assert.is(all[i].start, all[i - 1].stop, 'segments tile the rows in order')
  p.close()
  q.close()
  s.close()
})

test('deleting a segment another commit deleted is a conflict; deleting the array deletes its segments', () => {
  const { dir, s } = store()
  s.array('x', 'int32').appendSegment('a', new Int32Array([1, 1]))
  s.commit()
  const other = open(dir)
  other.array('x').deleteSegment('a')
  s.array('x').deleteSegment('a')
  other.commit()
  throwsCode(() => s.commit(), ConflictError, 'TXA_CONFLICT')
  s.abort()
  s.delete('x')
  s.commit()
  s.create('x', { dtype: 'int32', shape: [0, 2] }).appendSegment('a', new Int32Array([9, 9]))
  s.commit()
  assert.equal([...s.array('x').segments()], [{ name: 'a', start: 0, stop: 1 }], 'only the new array\'s segment')
  other.close()
  s.close()
})

test('segment() past a shrunk end throws BoundsError', () => {
  const { s } = store()
  const x = s.array('x', 'int32')
  x.appendSegment('a', new Int32Array([1, 1, 2, 2]))
  s.commit()
  x.resize([1, 2])
  throwsCode(() => x.segment('a'), BoundsError, 'TXA_BOUNDS')
  s.close()
})

// 250 000 by default (both fault modes run every suite); TXA_SEGMENTS=1000000 for the full million.
test('many segments: appended in a few commits, looked up by name, listed in order', () => {
  const dir = tempDir()
  const s = open(dir)
  const x = s.create('x', { dtype: 'uint32', shape: [0] })
  s.commit()
  const N = Number(process.env.TXA_SEGMENTS ?? 250_000)
  const row = new Uint32Array(1)
  const started = Date.now()
  for (let i = 0; i < N; i++) {
    row[0] = i
    x.appendSegment(`s${i}`, row)
    if ((i + 1) % 250_000 === 0 || i === N - 1) s.commit({ sync: false })
  }
  const appended = Date.now() - started
  const other = open(dir)
  const y = other.array('x', 'uint32')
  // The fastest of 5 rounds of 1000 lookups: a round the scheduler preempted (a loaded
  // machine) does not count, while a lookup slower than O(log n) makes every round slow.
  let lookupUs = Infinity
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint()
    for (let k = 0; k < 1000; k++) {
      const i = (k * 7919 + round) % N
      const r = y.segmentRange(`s${i}`)!
      if (r.start !== i || r.stop !== i + 1) assert.unreachable(`segment s${i} is ${JSON.stringify(r)}`)
    }
    lookupUs = Math.min(lookupUs, Number(process.hrtime.bigint() - t0) / 1000 / 1000)
  }
  assert.equal([...y.segment(`s${N - 3}`)], [N - 3])
  let count = 0
  let last = -1
  for (const g of y.segments()) {
    if (g.start !== last + 1) assert.unreachable(`segment ${g.name} starts at ${g.start} after ${last}`)
    last = g.start
    count++
  }
  assert.is(count, N)
  assert.ok(lookupUs < 200, `a lookup takes ${lookupUs.toFixed(1)} µs (O(log n) through LMDB)`)
  console.log(`  ${N} segments appended in ${appended} ms; ${lookupUs.toFixed(1)} µs per lookup by name`)
  other.close()
  s.close()
})

test.run()
