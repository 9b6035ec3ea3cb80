// A views() scan loads each 4 MiB window of blocks it reaches as a private copy in two
// huge pages (a scan window): the reader maps 2 MiB per page-table entry. Such a window is
// a snapshot copy like any mapped block: views equal read() after other commits, a write
// through a view commits exactly the block it changed, abort restores, and at most 8
// windows are held at once. Where transparent huge pages are off, views() falls back to the fault path
// and the same behaviour holds (the tests counting windows are skipped).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ConflictError, faultMode, open, slice } from '../src/index'
import { runChild } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

const BLOCK = 64 << 10
const WINDOW = 4 << 20
const HUGE_PAGE = 2 << 20
const PER_WINDOW = WINDOW / 8 // float64 elements of one window

function thpAvailable(): boolean {
  try {
    const enabled = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8')
    const pmd = Number(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', 'utf8'))
    return !enabled.includes('[never]') && pmd === HUGE_PAGE
  } catch {
    return false
  }
}
const withThp = thpAvailable() ? test : test.skip
if (!thpAvailable()) console.log('\n  SKIPPED scan-window counting tests: transparent huge pages (2 MiB) are off\n')

const valueAt = (i: number) => (i % 4093) * 0.5

/** A store holding float64 array 'a' of `windows` scan windows, committed. */
function storeWith(windows: number) {
  const dir = tempDir()
  const s = open(dir)
  const n = windows * PER_WINDOW
  const a = s.create('a', { dtype: 'float64', shape: [n] })
  a.write(null, Float64Array.from({ length: n }, (_, i) => valueAt(i)))
  s.commit()
  s.close()
  return { dir, n }
}

/** Sums a scan through views(4096) and checks each view against read(). */
function scanEqualsRead(a: ReturnType<ReturnType<typeof open>['array']>): number {
  let sum = 0
  let row = 0
  for (const v of a.views(4096)) {
    const expect = a.read([slice(row, row + v.length)]).data
    for (let i = 0; i < v.length; i++) {
      if (v[i] !== expect[i]) assert.unreachable(`row ${row + i}: view ${v[i]}, read() ${expect[i]}`)
      sum += v[i] as number
    }
    row += v.length
  }
  return sum
}

withThp('a views() scan loads one scan window per 4 MiB, and each view equals read()', () => {
  const { dir, n } = storeWith(4)
  const s = open(dir)
  const a = s.array('a', 'float64')
  let expectSum = 0
  for (let i = 0; i < n; i++) expectSum += valueAt(i)
  assert.is(scanEqualsRead(a), expectSum)
  const st = a.viewStats()
  assert.is(st.scanWindows, 4)
  assert.is(st.fileBlocks, 0, 'no block was mapped from the data file')
  assert.is(st.mappedBlocks, 4 * (WINDOW / BLOCK))
  s.close()
})

withThp('at most 8 scan windows are held: a scan of 12 windows unmaps the least recently used', () => {
  const { dir } = storeWith(12)
  const s = open(dir)
  const a = s.array('a', 'float64')
  scanEqualsRead(a)
  const st = a.viewStats()
  assert.is(st.scanWindows, 12)
  assert.ok(st.mappedBlocks <= 8 * (WINDOW / BLOCK), `mapped blocks ${st.mappedBlocks}`)
  // the first window was unmapped; reading it again loads it again, with the same bytes
  const first = a.views(4096).next().value as Float64Array
  assert.is(first[123], valueAt(123))
  assert.is(a.viewStats().scanWindows, 13)
  s.close()
})

function rssAnon(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

withThp('a long scan reuses the huge pages of evicted windows: the bytes stay exact and RssAnon bounded', () => {
  // 24 windows (96 MiB), some blocks never written (zeros) and a short last block: a reused
  // huge page held other bytes, which must not show through
  const windows = 24
  const dir = tempDir()
  const s0 = open(dir)
  const n = windows * PER_WINDOW - 1000
  const a0 = s0.create('a', { dtype: 'float64', shape: [n] })
  const per = BLOCK / 8
  for (let b = 0; b * per < n; b++) {
    if (b % 7 === 3) continue // a hole
    const from = b * per
    const to = Math.min(n, from + per)
    a0.write([slice(from, to)], Float64Array.from({ length: to - from }, (_, i) => valueAt(from + i)))
  }
  s0.commit()
  s0.close()
  const expectAt = (i: number) => (Math.floor(i / per) % 7 === 3 ? 0 : valueAt(i))
  const s = open(dir)
  const a = s.array('a', 'float64')
  for (let pass = 0; pass < 2; pass++) {
    const base = rssAnon()
    let peak = base
    let row = 0
    // small chunks (128 per window), then chunks of 4 windows (uffd mode loads windows ahead
    // of the reader within a chunk)
    for (const v of a.views(pass === 0 ? 4096 : 4 * PER_WINDOW)) {
      for (let i = 0; i < v.length; i += 97) {
        if (v[i] !== expectAt(row + i)) assert.unreachable(`pass ${pass}, row ${row + i}: ${v[i]}, expected ${expectAt(row + i)}`)
      }
      if (v[v.length - 1] !== expectAt(row + v.length - 1)) assert.unreachable(`pass ${pass}, row ${row + v.length - 1}`)
      row += v.length
      peak = Math.max(peak, rssAnon())
    }
    assert.is(row, n)
    assert.ok(peak - base <= 64 << 20, `pass ${pass}: RssAnon grew by ${((peak - base) / 2 ** 20).toFixed(1)} MiB`)
  }
  const st = a.viewStats()
  assert.ok(st.scanWindows >= 2 * (windows - 1), `scan windows ${st.scanWindows}`)
  assert.ok(st.scanWindowsRecycled >= 2 * (windows - 9), `recycled ${st.scanWindowsRecycled}`)
  if (faultMode().mode === 'uffd') assert.ok(st.scanWindowsPrefetched > 0, 'uffd mode loads windows ahead within a chunk')
  s.close()
})

test('a write through a view of a scanned window commits exactly the block it changed', () => {
  const { dir } = storeWith(2)
  const s1 = open(dir)
  const s2 = open(dir)
  const a1 = s1.array('a', 'float64')
  scanEqualsRead(a1)
  const v = a1.view()
  const mine = 3 * (BLOCK / 8) + 17 // block 3
  const theirs = 5 * (BLOCK / 8) + 2 // block 5, same window
  v[mine] = -1
  assert.is(s1.dirty, true)
  if (a1.viewStats().scanWindows > 0) assert.is(a1.viewStats().scanWindowsOpened, 1)
  s2.array('a', 'float64').write([slice(theirs, theirs + 1)], -2)
  s2.commit()
  s1.commit() // no conflict: only block 3 counts as written
  const s3 = open(dir)
  const data = s3.array('a', 'float64').read().data
  for (let i = 0; i < data.length; i++) {
    const want = i === mine ? -1 : i === theirs ? -2 : valueAt(i)
    if (data[i] !== want) assert.unreachable(`element ${i}: ${data[i]}, expected ${want}`)
  }
  s3.close()
  // the commit shut the window again: a later write is found as well
  const again = 4 * (BLOCK / 8) + 9 // block 4
  v[again] = -7
  assert.is(s1.dirty, true)
  if (a1.viewStats().scanWindows > 0) assert.is(a1.viewStats().scanWindowsOpened, 2)
  s1.commit()
  const s4 = open(dir)
  assert.is(s4.array('a', 'float64').read([slice(again, again + 2)]).data[0], -7)
  assert.is(s4.array('a', 'float64').read([slice(again, again + 2)]).data[1], valueAt(again + 1))
  s4.close()
  s1.close()
  s2.close()
})

test('a write through a scanned window conflicts with another commit of the same block', () => {
  const { dir } = storeWith(1)
  const s1 = open(dir)
  const s2 = open(dir)
  const a1 = s1.array('a', 'float64')
  scanEqualsRead(a1)
  a1.view()[7 * (BLOCK / 8)] = 42 // block 7
  s2.array('a', 'float64').write([slice(7 * (BLOCK / 8) + 1, 7 * (BLOCK / 8) + 2)], 43)
  s2.commit()
  throwsCode(() => s1.commit(), ConflictError, 'TXA_CONFLICT')
  s1.close()
  s2.close()
})

withThp('storing the bytes already there through a scanned window changes nothing', () => {
  const { dir } = storeWith(1)
  const s = open(dir)
  const a = s.array('a', 'float64')
  scanEqualsRead(a)
  const v = a.view()
  v[1000] = v[1000] as number
  assert.is(s.dirty, false)
  s.close()
})

test('abort restores a scanned window written through a view', () => {
  const { dir } = storeWith(2)
  const s = open(dir)
  const a = s.array('a', 'float64')
  scanEqualsRead(a)
  const v = a.view()
  v[10] = -5
  v[PER_WINDOW + 10] = -6
  assert.is(s.dirty, true)
  s.abort()
  assert.is(v[10], valueAt(10))
  assert.is(v[PER_WINDOW + 10], valueAt(PER_WINDOW + 10))
  assert.is(s.dirty, false)
  scanEqualsRead(a)
  s.close()
})

test('views of scanned windows equal read() after another handle commits and this one refreshes', () => {
  const { dir } = storeWith(2)
  const s1 = open(dir)
  const s2 = open(dir)
  const a1 = s1.array('a', 'float64')
  scanEqualsRead(a1)
  const v = a1.view()
  const at = 9 * (BLOCK / 8) + 4
  s2.array('a', 'float64').write([slice(at, at + 3)], 7.25)
  s2.commit()
  assert.is(v[at], valueAt(at), 'the old snapshot until refresh()')
  s1.refresh()
  assert.is(v[at], 7.25)
  assert.is(v[at + 2], 7.25)
  assert.is(v[at + 3], valueAt(at + 3))
  scanEqualsRead(a1)
  s1.close()
  s2.close()
})

test('views of scanned windows equal read() after another process commits and this handle refreshes', () => {
  const { dir } = storeWith(2)
  const s = open(dir)
  const a = s.array('a', 'float64')
  scanEqualsRead(a)
  const v = a.view()
  const at = PER_WINDOW + 3 * (BLOCK / 8) + 1 // second window, its block 3
  runChild('writer.child.ts', ['write', dir, 'a', String(at), '-9.5'])
  s.refresh()
  assert.is(v[at], -9.5)
  assert.is(v[at + 1], valueAt(at + 1))
  scanEqualsRead(a)
  s.close()
})

test('a scanned view can be written to a file, and filled by a read(2) once populated', () => {
  const { dir } = storeWith(1)
  const s = open(dir)
  const a = s.array('a', 'float64')
  scanEqualsRead(a)
  const file = path.join(tempDir(), 'out')
  const fd = fs.openSync(file, 'w+')
  const v = a.view(0, 8192)
  assert.is(fs.writeSync(fd, v), v.byteLength)
  const back = new Float64Array(fs.readFileSync(file).buffer.slice(0))
  assert.is(back[8191], valueAt(8191))
  // read(2) into the view: in uffd mode on any view; in sigsegv mode on a populated one
  const target = faultMode().systemCalls ? a.view(0, 8192) : a.view(0, 8192, { populate: true })
  fs.writeSync(fd, new Float64Array(8192).fill(3), 0, 8192 * 8, 0)
  assert.is(fs.readSync(fd, target, 0, 8192 * 8, 0), 8192 * 8)
  assert.is(target[100], 3)
  assert.is(s.dirty, true)
  s.commit()
  const s2 = open(dir)
  const d = s2.array('a', 'float64').read([slice(0, 8193)]).data
  assert.is(d[8191], 3)
  assert.is(d[8192], valueAt(8192))
  s2.close()
  fs.closeSync(fd)
  s.close()
})

test.run()
