/**
 * Processes of the soak (soak/run.ts). Rows of 'stream' and 'ledger' are int32 x 4.
 *   writer DIR W SEED : commits forever; each commit of writer W, number c:
 *       'stream'  k rows [W, c, i, check(W, c, i)], a plain append or segment `wW-c`
 *       'ledger'  one row [W, c, k | segment << 16, check(W, c, k)]: the commit's checksum row
 *       'board'   row W (one storage block) written through a view, every value = c
 *       'scratch-W' sometimes resized to a random length, every element = that length
 *     sync true or false at random; prints "c commitMs" once commit() has returned.
 *     It resumes after the c that board row W holds.
 *   follow DIR SINCE : watch() from SINCE; checks each commit arrives once and in order and
 *     that the rows announced for 'stream' tile it and hold valid rows; on SIGTERM, once
 *     it has seen every commit made before, prints {events, rows, error}.
 */
import { open, slice } from '../src/index'

export const BOARD_COLS = 512  // float64: one 4 KiB block per writer

export function check(w: number, c: number, i: number): number {
  return (Math.imul(w, 1000003) ^ Math.imul(c, 7919) ^ i ^ 0x5bd1e995) | 0
}

// mulberry32
function rng(seed: number): () => number {
  let t = seed >>> 0
  return () => {
    t = (t + 0x6d2b79f5) >>> 0
    let x = Math.imul(t ^ (t >>> 15), t | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function writer(dir: string, w: number, seed: number): void {
  const random = rng(seed)
  const s = open(dir, { sync: false })
  let c = s.array('board', 'float64').read([w, 0]).data[0]
  for (;;) {
    c++
    const k = 1 + Math.floor(random() * 8)
    const segment = random() < 0.5
    const rows = new Int32Array(k * 4)
    for (let i = 0; i < k; i++) rows.set([w, c, i, check(w, c, i)], i * 4)
    const resize = random() < 0.1 ? Math.floor(random() * 4096) : -1
    const sync = random() < 0.3
    for (let attempt = 0; ; attempt++) {
      try {
        const stream = s.array('stream', 'int32')
        if (segment) stream.appendSegment(`w${w}-${c}`, rows)
        else stream.append(rows)
        s.array('ledger', 'int32').append(new Int32Array([w, c, k | (segment ? 1 << 16 : 0), check(w, c, k)]))
        s.array('board', 'float64').view(w, w + 1).fill(c)
        if (resize >= 0) {
          const scratch = s.array(`scratch-${w}`, 'int32')
          scratch.resize([resize])
          scratch.view().fill(resize)
        }
        const t0 = process.hrtime.bigint()
        s.commit({ sync })
        process.stdout.write(`${c} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(3)}\n`)
        break
      } catch (e) {
        s.abort()
        if ((e as { code?: string }).code !== 'TXA_CONFLICT' || attempt > 20) throw e
      }
    }
  }
}

async function follow(dir: string, since: number): Promise<void> {
  const s = open(dir)
  let last = since
  let events = 0
  let rowsEnd = -1
  let error = ''
  process.on('SIGTERM', () => {
    // Reports once every commit made before the signal has arrived (at most 10 s later).
    s.refresh()
    const target = s.serial
    const giveUp = Date.now() + 10_000
    const report = (): void => {
      if (last < target && !error && Date.now() < giveUp) {
        setTimeout(report, 5)
        return
      }
      console.log(JSON.stringify({ events, rows: rowsEnd, error }))
      process.exit(0)
    }
    report()
  })
  try {
    for await (const event of s.watch({ since, keepAlive: true })) {
      if (event.serial !== last + 1) throw new Error(`commit ${event.serial} arrived after ${last}`)
      last = event.serial
      events++
      const change = event.arrays.stream
      if (change?.appended) {
        const [from, to] = change.appended
        if (rowsEnd >= 0 && from !== rowsEnd) throw new Error(`'stream' rows [${from}, ${to}) announced after [.., ${rowsEnd})`)
        rowsEnd = to
        s.refresh()
        const data = s.array('stream', 'int32').read([slice(from, to)]).data
        for (let r = 0; r < to - from; r++) {
          const [w, c, i, k] = data.subarray(r * 4, r * 4 + 4)
          if (k !== check(w, c, i)) throw new Error(`'stream' row ${from + r} announced by commit ${event.serial} is not valid`)
        }
      }
    }
  } catch (e) {
    error = String(e)
    console.log(JSON.stringify({ events, rows: rowsEnd, error }))
    process.exit(1)
  }
}

if (process.env.TXA_SOAK_CHILD) {
  const [cmd, dir, a, b] = process.argv.slice(2)
  if (cmd === 'writer') writer(dir, Number(a), Number(b))
  else if (cmd === 'follow') void follow(dir, Number(a))
}
