// open() racing other processes: several creating one new store at once, and opens while
// another process grows the store (LMDB reports MDB_MAP_RESIZED when the data grew past
// the map size this process chose at open; open adopts the new size and retries, as
// every later transaction does).
import * as fs from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { startChild } from './helpers/child'
import { tempDir } from './helpers/tmp'

test('opens with a small map succeed while a writer in another process keeps growing the store', async () => {
  const dir = tempDir()
  open(dir).close()
  const writer = startChild('writer.child.ts', ['grow', dir])
  try {
    // wait until the writer has committed
    await new Promise<void>((resolve, reject) => {
      writer.stdout!.on('data', (chunk: Buffer) => { if (/committed/.test(chunk.toString())) resolve() })
      writer.on('exit', (code) => reject(new Error(`writer exited with ${code}`)))
    })
    const failures: string[] = []
    let opens = 0
    const until = Date.now() + 2000
    while (Date.now() < until) {
      try {
        // a map no larger than the data at open: every commit that grows the file meanwhile resizes it
        const store = open(dir, { mapSize: 4096 })
        assert.equal(store.array('rows').shape.slice(1), [4096])
        store.close()
      } catch (e) {
        failures.push(String((e as Error).message))
      }
      opens++
      await new Promise((resolve) => setImmediate(resolve))
    }
    assert.ok(opens >= 20, `${opens} opens`)
    assert.equal(failures.slice(0, 3), [], `${failures.length} of ${opens} opens failed`)
  } finally {
    writer.kill('SIGKILL')
  }
})

test('six processes creating one new store at the same moment all succeed, and it is created once', async () => {
  const dir = `${tempDir()}/new`
  const children = Array.from({ length: 6 }, () => startChild('open.child.ts', [dir, '{}', 'write']))
  const outputs = await Promise.all(children.map((child) => new Promise<string>((resolve) => {
    let out = ''
    child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
    child.on('exit', () => resolve(out))
  })))
  for (const out of outputs) assert.match(out, /"write":\{"ok":true/, out)
  const store = open(dir, { create: false })
  assert.is(store.list().length, 6, 'each process committed its array to the one store')
  store.close()
  assert.equal(fs.readdirSync(dir).sort(), ['data.mdb', 'lock.mdb', 'txarray.signal'], 'no temporary file left')
})

test.run()
