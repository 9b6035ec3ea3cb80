// The native binding's contract: every entry point of the addon turns native failures into
// the coded error classes (a malformed argument, a closed handle), so that no call can
// end the process with an uncaught C++ exception; and only the binding's C++ knows
// JavaScript, reaching the view layer through the engine.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { ArgumentError, BoundsError, ClosedError, ConflictError, TooLargeError, open } from '../src/index'
import { addon, type NativeSession } from '../src/binding'
import { encodeFormat } from '../src/metadata'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

const BLOCK = 4096

function session(dir: string): NativeSession {
  return new addon.NativeSession(dir, undefined, undefined, 64, { create: false, readOnly: false, format: encodeFormat() })
}

function storeWithArray(): string {
  const dir = tempDir()
  const store = open(dir)
  store.create('a', { dtype: 'uint8', shape: [BLOCK * 2], blockBytes: BLOCK })
  store.commit()
  store.close()
  return dir
}

// Calls an addon member with arguments its TypeScript type does not allow.
function callLoosely(target: object, name: string, ...args: unknown[]): unknown {
  const member = (target as Record<string, unknown>)[name]
  assert.type(member, 'function', `${name} is a function`)
  return (member as (...a: unknown[]) => unknown).apply(target, args)
}

test('opening with malformed arguments raises ArgumentError', () => {
  const dir = storeWithArray()
  const Session = addon.NativeSession as unknown as new (...args: unknown[]) => NativeSession
  const mode = { create: false, readOnly: false, format: encodeFormat() }
  throwsCode(() => new Session(42, undefined, undefined, 64, mode), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => new Session(dir, -1, undefined, 64, mode), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => new Session(dir, undefined, undefined, 'many', mode), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => new Session(dir, undefined, undefined, 64, null), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => new Session(dir, undefined, undefined, 64, { ...mode, format: 'v1' }), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => new Session(`${dir}\0x`, undefined, undefined, 64, mode), ArgumentError, 'TXA_ARGUMENT')
  const opened = session(dir)
  assert.ok(opened.getRecord('a'), 'a well-formed open still works')
  opened.close()
})

test('a session method given malformed arguments raises ArgumentError and the session stays usable', () => {
  const s = session(storeWithArray())
  throwsCode(() => callLoosely(s, 'getRecord', 7), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'track', 1, 0, 0, 'a'), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'track', 1.5, BLOCK, 0, 'a'), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'commit', 'records', [], [], false), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'commit', [{ name: 'a', expectedSerial: 0, remove: true, array: {} }], [], [], false), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'commit', [], [], [{ array: 1, puts: [], deletes: [] }], false), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'applyRemote', { head: 1, remoteMeta: new Uint8Array(0), commits: 'none', records: [], blocks: [] }), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'check', 5), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'follower', 'not a function'), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(s, 'readCommits', -1, 10), ArgumentError, 'TXA_ARGUMENT')
  assert.is(s.getRecord('a')!.rows, BLOCK * 2)
  s.close()
})

test('an array method given malformed arguments raises ArgumentError or BoundsError', () => {
  const s = session(storeWithArray())
  const record = s.getRecord('a')!
  const array = s.track(record.id, BLOCK, record.rows * record.rowBytes, 'a')
  throwsCode(() => callLoosely(array, 'gather', 0, [4], [1], 1, 'out', false), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => callLoosely(array, 'gather', 0, [4], [1], 9, new Uint8Array(4), false), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => array.gather(0, [8], [1], 1, new Uint8Array(4), false), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => callLoosely(array, 'take', [0.5], 1, 1, new Uint8Array(1), false), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => array.take(new Float64Array([2 ** 52]), 1, 2 ** 20, new Uint8Array(2 ** 20), false), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => array.view(0, 2 ** 52), BoundsError, 'TXA_BOUNDS')
  const out = new Uint8Array(4)
  array.gather(0, [4], [1], 1, out, false)
  assert.equal([...out], [0, 0, 0, 0])
  s.close()
})

test('every member of a closed session and of its arrays raises ClosedError', () => {
  const s = session(storeWithArray())
  const record = s.getRecord('a')!
  const array = s.track(record.id, BLOCK, record.rows * record.rowBytes, 'a')
  const view = array.view(0, BLOCK)
  s.close()
  s.close()  // idempotent
  assert.is(view.byteLength, 0, 'views are detached')
  for (const [name, args] of [
    ['getRecord', ['a']], ['listRecords', []], ['getMeta', ['k']], ['track', [record.id, BLOCK, 0, 'a']],
    ['commit', [[], [], [], false]], ['refresh', []], ['flush', []], ['latestRecord', ['a']], ['latestSerial', []],
    ['readCommits', [0, 1]], ['getSegment', [record.id, 's']], ['listSegments', [record.id, null, 1]],
    ['follower', [() => {}]], ['waiter', []], ['stats', []], ['check', [{}]], ['envFigures', []],
  ] as const) {
    throwsCode(() => callLoosely(s, name, ...args), ClosedError, 'TXA_CLOSED')
  }
  throwsCode(() => s.serial, ClosedError, 'TXA_CLOSED')
  for (const [name, args] of [
    ['gather', [0, [1], [1], 1, new Uint8Array(1), false]], ['scatter', [0, [1], [1], 1, new Uint8Array(1)]],
    ['resize', [1]], ['adoptCommittedLength', [1]], ['view', [0, 1]], ['take', [[0], 1, 1, new Uint8Array(1), false]],
    ['memoryStats', []], ['releaseMappedPages', []], ['plan', []],
  ] as const) {
    throwsCode(() => callLoosely(array, name, ...args), ClosedError, 'TXA_CLOSED')
  }
  throwsCode(() => array.id, ClosedError, 'TXA_CLOSED')
  throwsCode(() => array.byteLength, ClosedError, 'TXA_CLOSED')
  throwsCode(() => array.hasChanges, ClosedError, 'TXA_CLOSED')
  array.release()  // idempotent after close
})

test('a conflict raised in the engine reaches JavaScript as ConflictError with its facts', () => {
  const dir = storeWithArray()
  const first = session(dir)
  const second = session(dir)
  const track = (s: NativeSession) => {
    const r = s.getRecord('a')!
    return { record: r, array: s.track(r.id, BLOCK, r.rows * r.rowBytes, 'a') }
  }
  const a1 = track(first)
  const a2 = track(second)
  a1.array.scatter(BLOCK, [1], [1], 1, new Uint8Array([1]))
  a2.array.scatter(BLOCK + 1, [1], [1], 1, new Uint8Array([2]))
  const won = first.commit([], [], [], false)
  const error = throwsCode(() => second.commit([], [], [], false), ConflictError, 'TXA_CONFLICT')
  assert.is(error.array, 'a')
  assert.is(error.serial, won.serial)
  assert.equal(error.blocks, [[1, 1]])
  first.close()
  second.close()
})

test('only the binding\'s C++ knows JavaScript; it catches errors in guarded() alone and reaches the view layer only through the engine', () => {
  const native = path.join(__dirname, '..', 'native')
  const sources = (dir: string) => fs.readdirSync(path.join(native, dir)).filter((f) => /\.(cc|h)$/.test(f)).map((f) => path.join(dir, f))
  const binding = sources('binding')
  assert.ok(binding.includes(path.join('binding', 'addon.cc')))
  for (const file of binding) {
    const text = fs.readFileSync(path.join(native, file), 'utf8')
    assert.not.match(text, /#include\s+"[^"]*vmem\//, `${file} includes no view-layer header`)
    assert.not.match(text, /\bvmem::/, `${file} names nothing of the view layer`)
    if (file !== path.join('binding', 'guarded.h')) assert.not.match(text, /\bcatch\s*\(/, `${file} leaves errors to guarded()`)
  }
  for (const file of [...sources('engine'), ...sources('vmem')]) {
    const text = fs.readFileSync(path.join(native, file), 'utf8')
    assert.not.match(text, /napi\.h|node_api\.h|\bNapi::/, `${file} knows no JavaScript`)
  }
})

test('a view larger than the platform allows raises TooLargeError, and the process lives on past its finalizers', async () => {
  const dir = tempDir()
  const store = open(dir)
  const bytes = 2 ** 32 + 2 * BLOCK
  store.create('big', { dtype: 'uint8', shape: [bytes], blockBytes: BLOCK })
  store.commit()
  store.close()
  const s = session(dir)
  const record = s.getRecord('big')!
  const array = s.track(record.id, BLOCK, record.rows * record.rowBytes, 'big')
  throwsCode(() => array.view(0, 2 ** 32 + BLOCK), TooLargeError, 'TXA_TOO_LARGE')
  // Whatever the platform did with the refused buffer's finalizer has run by now.
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setTimeout(resolve, 10))
  const view = new Uint8Array(array.view(0, BLOCK))
  assert.is(view[0], 0, 'a view of the array still reads')
  s.close()
})

test.run()
