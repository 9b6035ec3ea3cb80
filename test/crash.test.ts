// Crash safety: a process killed with SIGKILL at a random moment leaves a store that
// reopens to exactly one of its commits, never half of one.
import type { ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { startChild } from './helpers/child'
import { readerPids } from './helpers/mdb-tools'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'
import { crashRow, crashStep } from './helpers/writer.child'

/** Starts the append-and-commit loop; resolves after `commits` commits were reported, with them. */
function runUntil(child: ChildProcess, commits: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const reported: number[] = []
    let buffer = ''
    let stderr = ''
    child.stderr!.on('data', (d) => { stderr += d })
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString()
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const m = /^committed (\d+)$/.exec(buffer.slice(0, nl))
        buffer = buffer.slice(nl + 1)
        if (m) reported.push(Number(m[1]))
        if (reported.length === commits) resolve(reported)
      }
    })
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited early (${signal ?? code}): ${stderr}`))
    })
  })
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.on('exit', () => resolve())
  })
}

/** Every length the loop can commit, starting from 0. */
function committedLengths(upTo: number): Set<number> {
  const out = new Set<number>([0])
  for (let n = 0; n <= upTo; n += crashStep(n)) out.add(n)
  return out
}

test('SIGKILL at random moments never leaves half a commit behind', async () => {
  const dir = tempDir()
  const rng = new Rng(4242)
  let lastSeen = 0
  for (let round = 0; round < 5; round++) {
    const child = startChild('writer.child.ts', ['crash-loop', dir, round % 2 === 0 ? '1' : '0'])
    const reported = await runUntil(child, rng.int(2, 40))
    // kill at a random moment: right away, or after letting it run a little longer
    const spin = rng.int(0, 3000)
    for (let i = 0; i < spin; i++) Math.sqrt(i)
    child.kill('SIGKILL')
    await exited(child)
    assert.is(child.signalCode, 'SIGKILL')
    const lastReported = reported[reported.length - 1]

    const store = open(dir)
    const a = store.array('rows', 'int32')
    const n = a.rows
    assert.equal(a.shape, [n, 5])
    assert.ok(committedLengths(n + 1).has(n), `round ${round}: length ${n} is a committed length`)
    assert.ok(n >= lastReported, `round ${round}: length ${n} keeps the reported commit ${lastReported}`)
    assert.ok(n >= lastSeen, `round ${round}: no commit of an earlier round is lost`)
    const data = a.read().data
    for (let i = 0; i < n; i++) {
      const expected = crashRow(i)
      for (let j = 0; j < 5; j++) {
        if (data[i * 5 + j] !== expected[j]) assert.unreachable(`round ${round}: row ${i} is [${data.subarray(i * 5, i * 5 + 5).join(', ')}]`)
      }
    }
    store.close()
    lastSeen = n
  }
  assert.ok(lastSeen > 0)
})

test('a process killed while another keeps the store open leaves no reader slot and no pinned snapshot behind', async () => {
  const dir = tempDir()
  const keeper = open(dir) // a long-running process that never reopens the store
  const rng = new Rng(77)
  const killed: number[] = []
  for (let round = 0; round < 3; round++) {
    const child = startChild('writer.child.ts', ['crash-loop', dir, '0'])
    await runUntil(child, rng.int(2, 10))
    killed.push(child.pid!)
    child.kill('SIGKILL')
    await exited(child)
  }
  keeper.refresh()
  const a = keeper.array('rows', 'int32')
  const n = a.rows
  assert.ok(n > 0)
  // The keeper commits: the dead processes' snapshots must not pin old pages. Without
  // clearing their reader slots, every commit below would take fresh pages.
  const file = path.join(dir, 'data.mdb')
  keeper.commit()
  const sizeBefore = fs.statSync(file).size
  for (let i = 0; i < 400; i++) {
    a.write([n - 1], Int32Array.from(crashRow(n - 1)))
    a.write([0, 4], 7 + (i % 2)) // changes a block every time
    keeper.commit({ sync: false })
  }
  a.write([0, 4], 7)
  keeper.commit()
  const grew = fs.statSync(file).size - sizeBefore
  assert.ok(grew < 400 * 4096, `data.mdb grew by ${grew} bytes over 400 small commits`)
  const readers = readerPids(dir)
  for (const pid of killed) assert.not.ok(readers.includes(pid), `dead pid ${pid} still holds a reader slot: ${readers.join(', ')}`)
  keeper.close()
})

test.run()
