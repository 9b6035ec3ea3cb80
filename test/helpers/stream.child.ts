/**
 * Child script for streams.test.ts, run as a process or a worker thread (TXA_CHILD set).
 * Rows of the int32 array 'log' (shape [n, 4]) are [writer, commit, i, check(writer, commit, i)].
 *   segments DIR WRITER COMMITS ROWS [PAUSE_MS] : COMMITS commits, each appending
 *                                      segment `w<WRITER>-<commit>` of ROWS rows
 *   plain DIR WRITER COMMITS ROWS    : the same with plain appends
 *   follow DIR SINCE TOTAL [STATE]   : watch() from SINCE until 'log' has TOTAL rows,
 *                                      checking each commit arrives once, in order, and
 *                                      the announced rows hold whole, valid commits of
 *                                      one writer tiling the array; with STATE, saves
 *                                      "serial rows" there after each commit it handled.
 *                                      Prints / posts {events, rows, groups, first, last}.
 */
import * as fs from 'node:fs'
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { open, slice } from '../../src/index'

export function check(writer: number, commit: number, i: number): number {
  return (Math.imul(writer, 1000003) ^ Math.imul(commit, 7919) ^ i) | 0
}

function rowsOf(writer: number, commit: number, rows: number): Int32Array {
  const data = new Int32Array(rows * 4)
  for (let i = 0; i < rows; i++) data.set([writer, commit, i, check(writer, commit, i)], i * 4)
  return data
}

function report(message: unknown): void {
  if (parentPort) parentPort.postMessage(message)
  else console.log(JSON.stringify(message))
}

async function main(args: string[]): Promise<void> {
  const [cmd, dir] = args
  if (cmd === 'segments' || cmd === 'plain') {
    const [writer, commits, rows, pauseMs] = args.slice(2).map(Number)
    const s = open(dir, { sync: false })
    for (let c = 0; c < commits; c++) {
      const a = s.array('log', 'int32')
      if (cmd === 'segments') a.appendSegment(`w${writer}-${c}`, rowsOf(writer, c, rows))
      else a.append(rowsOf(writer, c, rows))
      s.commit()
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs))
    }
    s.close()
    report({ done: writer })
    return
  }
  if (cmd === 'follow') {
    const since = Number(args[2])
    const total = Number(args[3])
    const state = args[4]
    const s = open(dir)
    let last = since
    let rowsEnd = state && fs.existsSync(state) ? Number(fs.readFileSync(state, 'utf8').split(' ')[1]) : -1
    let events = 0
    let groups = 0
    let first = 0
    for await (const event of s.watch({ since, keepAlive: true })) {
      if (event.serial !== last + 1) throw new Error(`commit ${event.serial} after ${last}: not once and in order`)
      last = event.serial
      if (!first) first = event.serial
      events++
      const change = event.arrays.log
      if (change?.appended) {
        const [from, to] = change.appended
        if (rowsEnd >= 0 && from !== rowsEnd) throw new Error(`appended [${from}, ${to}) after rows ended at ${rowsEnd}`)
        rowsEnd = to
        s.refresh()
        const data = s.array('log', 'int32').read([slice(from, to)]).data
        for (let r = 0; r < to - from; r++) {
          const [w, c, i, k] = data.subarray(r * 4, r * 4 + 4)
          if (k !== check(w, c, i)) throw new Error(`row ${from + r} is damaged`)
          if (i !== (r === 0 ? 0 : data[(r - 1) * 4 + 2] + 1) && i !== 0) throw new Error(`row ${from + r}: rows of a commit are not together`)
          if (i === 0) groups++
        }
        if (data[(to - from - 1) * 4 + 2] + 1 !== countOf(data, to - from)) throw new Error(`commit at ${from} is torn`)
      }
      if (state) {  // atomically: a kill leaves the old state or the new one
        fs.writeFileSync(`${state}.tmp`, `${last} ${rowsEnd}`)
        fs.renameSync(`${state}.tmp`, state)
      }
      if (rowsEnd >= total) break
    }
    s.close()
    report({ events, rows: rowsEnd, groups, first, last })
  }
}

// Rows of the last group in `data` (from its i = 0 row to the end).
function countOf(data: Int32Array, rows: number): number {
  let r = rows - 1
  while (r > 0 && data[r * 4 + 2] !== 0) r--
  return rows - r
}

if (process.env.TXA_CHILD) {
  main(isMainThread ? process.argv.slice(2) : (workerData as string[])).catch((e) => {
    console.error(e)
    process.exitCode = 1
    if (parentPort) throw e
  })
}
