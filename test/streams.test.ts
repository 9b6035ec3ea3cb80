// Many writers, one stream: processes and worker threads appending segments and plain rows
// to one array while followers watch() it; every commit arrives once and in order, the
// rows it announces are whole and valid, and the segment table matches the rows.
import type { ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { startChild, startWorker, workerDone } from './helpers/child'
import { tempDir } from './helpers/tmp'
import { check } from './helpers/stream.child'

const COMMITS = 40
const ROWS = 3

function store(): { dir: string; since: number } {
  const dir = tempDir()
  const s = open(dir)
  s.create('log', { dtype: 'int32', shape: [0, 4], blockBytes: 4096 })
  s.commit()
  const since = s.serial
  s.close()
  return { dir, since }
}

function finished(child: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })))
}

function lastJson(out: string): Record<string, number> {
  return JSON.parse(out.trim().split('\n').at(-1)!)
}

// The segment table against the rows: each segment holds exactly its commit's rows.
function checkSegments(dir: string, writers: number[]): void {
  const s = open(dir)
  const log = s.array('log', 'int32')
  const segments = [...log.segments()]
  assert.is(segments.length, writers.length * COMMITS)
  for (const g of segments) {
    const [, w, c] = /^w(\d+)-(\d+)$/.exec(g.name)!.map(Number)
    const rows = log.segment(g.name)
    assert.is(rows.length, ROWS * 4, g.name)
    for (let i = 0; i < ROWS; i++) {
      assert.equal([...rows.subarray(i * 4, i * 4 + 4)], [w, c, i, check(w, c, i)], `${g.name} row ${i}`)
    }
  }
  s.close()
}

test('4 segment appenders + 2 plain appenders (processes) + 1 follower watching', async () => {
  const { dir, since } = store()
  const total = 6 * COMMITS * ROWS
  const follower = finished(startChild('stream.child.ts', ['follow', dir, String(since), String(total)]))
  const writers = [1, 2, 3, 4].map((w) => finished(startChild('stream.child.ts', ['segments', dir, String(w), String(COMMITS), String(ROWS)])))
  writers.push(...[5, 6].map((w) => finished(startChild('stream.child.ts', ['plain', dir, String(w), String(COMMITS), String(ROWS)]))))
  for (const w of await Promise.all(writers)) assert.is(w.code, 0, w.err)
  const f = await follower
  assert.is(f.code, 0, f.err)
  const summary = lastJson(f.out)
  assert.equal(summary, { events: 6 * COMMITS, rows: total, groups: 6 * COMMITS, first: since + 1, last: since + 6 * COMMITS })
  checkSegments(dir, [1, 2, 3, 4])
})

test('a follower killed with SIGKILL and restarted with `since` misses nothing', async () => {
  const { dir, since } = store()
  const total = 2 * COMMITS * ROWS
  const state = path.join(dir, 'follower.state')
  const first = startChild('stream.child.ts', ['follow', dir, String(since), String(total), state])
  const firstDone = finished(first)
  const writers = [1, 2].map((w) => finished(startChild('stream.child.ts', ['segments', dir, String(w), String(COMMITS), String(ROWS), '10'])))
  // Kill it once it has handled some commits (a third of the rows), whatever it is doing.
  while (!fs.existsSync(state) || Number(fs.readFileSync(state, 'utf8').split(' ')[1]) < total / 3) {
    await new Promise((r) => setTimeout(r, 5))
  }
  first.kill('SIGKILL')
  assert.is((await firstDone).code, null, 'killed')
  const [saved, rowsEnd] = fs.readFileSync(state, 'utf8').split(' ').map(Number)
  for (const w of await Promise.all(writers)) assert.is(w.code, 0, w.err)
  const second = await finished(startChild('stream.child.ts', ['follow', dir, String(saved), String(total), state]))
  assert.is(second.code, 0, second.err)
  const summary = lastJson(second.out)
  assert.is(summary.first, saved + 1, 'resumes with the commit after the saved serial')
  assert.is(summary.last, since + 2 * COMMITS)
  assert.is(summary.rows, total)
  assert.ok(rowsEnd < total, `killed after ${rowsEnd} of ${total} rows`)
  checkSegments(dir, [1, 2])
})

test('worker threads: 3 segment appenders and a follower in one process', async () => {
  const { dir, since } = store()
  const total = 3 * COMMITS * ROWS
  const follower = workerDone<Record<string, number>>(startWorker('stream.child.ts', ['follow', dir, String(since), String(total)]))
  const writers = [1, 2, 3].map((w) => workerDone(startWorker('stream.child.ts', ['segments', dir, String(w), String(COMMITS), String(ROWS)])))
  await Promise.all(writers)
  const [summary] = await follower
  assert.equal(summary, { events: 3 * COMMITS, rows: total, groups: 3 * COMMITS, first: since + 1, last: since + 3 * COMMITS })
  checkSegments(dir, [1, 2, 3])
})

test.run()
