/**
 * S1 random windows: 10 000 windows of 16 rows at random starts (fixed seed) of a
 * R × 2000 float64 array (default R = 250 000, 4 GB), into one preallocated output:
 *   - take(starts, 16, out): one call;
 *   - read([slice(s, s + 16), null], out.subarray(...)) per window;
 *   - a view (a.view() if the array fits in MAX_VIEW_BYTES, else views()): out.set(
 *     view.subarray(...)) per window; first touch (fresh handle: every window faults its
 *     pages in) and loaded (the same windows again);
 * beside, in the same run: fs.readSync(fd, out, off, len, pos) per window on a flat .npy
 * of the same bytes; plain LMDB (mdb_get + memcpy in a C process: the "no txarray layer"
 * baseline, since the lmdb npm package cannot read our store and LMDB forbids a second
 * environment in one process); copying out of an in-memory Buffer of the same bytes (in
 * a child process, so that its memory is gone afterwards; skipped if it does not fit).
 * And the Python user's ways, when /usr/bin/python3 can import them (else a note): numpy.memmap
 * of the .npy (first touch in a fresh process, then loaded: the counterparts of a view) and
 * h5py read_direct per window of the same array in an HDF5 file (bench/lib/py-windows.py).
 * Hot: one warm pass, then --runs measured passes. Cold (root only): the page cache is
 * dropped before each measured pass.
 *
 * take() is also timed in three children: pread/preadv at each block's file offset (the
 * default, up to 4 copy threads), the same on one thread (TXARRAY_COPY_THREADS=1), and
 * memcpy from LMDB's map (TXARRAY_COPY_PATH=map); and with verifyChecksums.
 *
 * Child mode (the in-memory baseline): tsx bench/s1-windows.ts --mem <npy> <dataOffset> <nbytes> <startsFile> <windowRows> <passes>
 * Child mode (hot take): tsx bench/s1-windows.ts --hot-take <storeDir> <startsFile> <windowRows> <passes>
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { MAX_VIEW_BYTES, open, slice } from '../src/index'
import { COLS, ARRAY_NAME, type Dataset, dropCaches, loadNote, randomStarts, ROW_BYTES, runChildSync } from './lib/data'
import { type Row, median, now, seconds } from './lib/measure'
import { buildLmdbWindows } from './lib/native-baseline'
import { pythonWindows } from './lib/python-baselines'


/** Copies `rows` rows from row `start` of the views (each `rowsPerView` rows) to out[at..]. */
function copyWindow(views: Float64Array[], rowsPerView: number, start: number, rows: number, out: Float64Array, at: number): void {
  while (rows > 0) { // a window may straddle two views when views() is used
    const v = views[Math.floor(start / rowsPerView)]
    const r0 = start % rowsPerView
    const n = Math.min(rows, rowsPerView - r0)
    out.set(v.subarray(r0 * COLS, (r0 + n) * COLS), at)
    at += n * COLS
    start += n
    rows -= n
  }
}

export interface S1Options {
  runs: number
  windows: number
  windowRows: number
  cold: boolean
  log?: (s: string) => void
}

type Pass = () => number // seconds

function medianPasses(pass: Pass, runs: number, warm = true): number {
  if (warm) pass()
  const xs: number[] = []
  for (let i = 0; i < runs; i++) xs.push(pass())
  return median(xs)
}

/**
 * Cold passes: before each, every store handle of this process is closed (LMDB's map is
 * unmapped: drop_caches leaves pages that are mapped in a process alone), the page cache
 * is dropped, a fresh handle is opened, and one pass runs.
 */
function coldPasses<H extends { close(): void }>(openHandle: () => H, pass: (h: H) => number, runs: number): number {
  const xs: number[] = []
  for (let i = 0; i < runs; i++) {
    dropCaches()
    const h = openHandle()
    xs.push(pass(h))
    h.close()
  }
  return median(xs)
}

export function runS1(ds: Dataset, dir: string, o: S1Options): Row[] {
  const log = o.log ?? console.log
  const W = o.windowRows * COLS // elements per window
  const windowBytes = W * 8
  const starts = randomStarts(o.windows, ds.rows, o.windowRows)
  const out = new Float64Array(o.windows * W)
  out.fill(1) // fault the output in once, before any timing
  const outBytes = new Uint8Array(out.buffer)
  const perSec = (sec: number) => o.windows / sec
  const gbps = (sec: number) => (o.windows * windowBytes) / sec / 1e9

  // --- passes ---
  const takePass = (a: ReturnType<typeof openArray>['a'], verifyChecksums = false): Pass => () => {
    const t0 = now()
    a.take(starts, o.windowRows, out, { verifyChecksums })
    return seconds(t0)
  }
  const readPass = (a: ReturnType<typeof openArray>['a']): Pass => () => {
    const t0 = now()
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i]
      a.read([slice(s, s + o.windowRows), null], out.subarray(i * W, (i + 1) * W))
    }
    return seconds(t0)
  }
  const viewPass = (views: Float64Array[], rowsPerView: number): Pass => () => {
    const t0 = now()
    for (let i = 0; i < starts.length; i++) copyWindow(views, rowsPerView, starts[i], o.windowRows, out, i * W)
    return seconds(t0)
  }
  const fd = fs.openSync(ds.npyPath, 'r')
  const filePass: Pass = () => {
    const t0 = now()
    for (let i = 0; i < starts.length; i++) {
      fs.readSync(fd, outBytes, i * windowBytes, windowBytes, ds.npyDataOffset + starts[i] * ROW_BYTES)
    }
    return seconds(t0)
  }

  function openArray() {
    const store = open(ds.storeDir)
    const a = store.array(ARRAY_NAME, 'float64')
    let views: Float64Array[]
    let rowsPerView: number
    if (a.nbytes <= MAX_VIEW_BYTES) {
      views = [a.view()]
      rowsPerView = a.rows
    } else {
      rowsPerView = Math.floor(MAX_VIEW_BYTES / ROW_BYTES)
      views = [...a.views(rowsPerView)]
    }
    return { store, a, views, rowsPerView }
  }

  const startsFile = path.join(dir, 's1-starts.u32')
  fs.writeFileSync(startsFile, starts)
  const lmdbBin = buildLmdbWindows(dir)
  const lmdbRun = (passes: number): number[] => {
    const r = spawnSync(lmdbBin, [ds.storeDir, startsFile, String(o.windowRows), String(ROW_BYTES), '65536', String(passes)], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`lmdb-windows failed: ${r.stderr}`)
    return JSON.parse(r.stdout).seconds
  }
  // --- cold, first: nothing of this process maps the store yet (views not yet collected
  // would keep LMDB's map, and its pages, alive after close) ---
  const cold: Record<string, number> = {}
  const canDrop = o.cold && dropCaches()
  if (o.cold && !canDrop) log('  S1 cold skipped: cannot write /proc/sys/vm/drop_caches (not root?)')
  if (canDrop) {
    // Each cold pass in a fresh child process: in this one, views not yet collected keep
    // the LMDB environment mapped (and a read transaction open) after store.close(), and
    // drop_caches leaves mapped pages alone. Page cache dropped just before the child starts.
    log(`  S1 cold (${loadNote()})`)
    const coldChild = (method: string) => {
      const xs: number[] = []
      for (let i = 0; i < o.runs; i++) {
        dropCaches()
        xs.push(runChildSync<{ seconds: number }>('s1-windows.ts', ['--cold', method, ds.storeDir, ds.npyPath, String(ds.npyDataOffset), startsFile, String(o.windowRows)]).seconds)
      }
      return median(xs)
    }
    cold.file = coldChild('file')
    cold.take = coldChild('take')
    cold.read = coldChild('read')
    cold.view = coldChild('view')
    cold.lmdb = coldPasses(() => ({ close() {} }), () => lmdbRun(1)[0], o.runs)
  }

  // Check once that every method returns the file's bytes.
  {
    const { store, a } = openArray()
    const n = Math.min(50, starts.length)
    const ref = new Float64Array(n * W)
    for (let i = 0; i < n; i++) fs.readSync(fd, new Uint8Array(ref.buffer), i * windowBytes, windowBytes, ds.npyDataOffset + starts[i] * ROW_BYTES)
    const got = a.take(starts.subarray(0, n), o.windowRows).data
    for (let i = 0; i < ref.length; i++) if (got[i] !== ref[i]) throw new Error(`S1: take differs from the file at element ${i}`)
    store.close()
  }

  // --- hot ---
  log(`  S1 hot (${loadNote()})`)
  const hot: Record<string, number> = {}
  {
    const { store, a } = openArray()
    hot.take = medianPasses(takePass(a), o.runs)
    hot.takeVerify = medianPasses(takePass(a, true), o.runs)
    hot.read = medianPasses(readPass(a), o.runs)
    store.close()
  }
  hot.file = medianPasses(filePass, o.runs)
  {
    // Per run: a fresh handle (empty region, page cache hot): first touch, then loaded.
    const first: number[] = []
    const loaded: number[] = []
    for (let r = 0; r < o.runs; r++) {
      const { store, a, views, rowsPerView } = openArray()
      first.push(viewPass(views, rowsPerView)())
      const afterFirst = a.viewStats()
      loaded.push(viewPass(views, rowsPerView)())
      if (r === 0) log(`  S1 viewStats after the first-touch pass ${JSON.stringify(afterFirst)}, after the loaded pass ${JSON.stringify(a.viewStats())}`)
      store.close()
    }
    hot.viewFirst = median(first)
    hot.viewLoaded = median(loaded)
  }
  // take() in a child per copy path: pread/preadv at each block's file offset (the
  // default) and memcpy from LMDB's map (TXARRAY_COPY_PATH=map). The machine is shared, so the two
  // alternate, each beside an fs.readSync pass: per child one warm pass, then the best of
  // three; the figure is the median over --runs children.
  const hotTakeChild = (copyPath: string, threads?: number) => Math.min(...runChildSync<{ seconds: number[] }>('s1-windows.ts',
    ['--hot-take', ds.storeDir, startsFile, String(o.windowRows), '4'],
    { TXARRAY_COPY_PATH: copyPath, ...(threads ? { TXARRAY_COPY_THREADS: String(threads) } : {}) }).seconds.slice(1))
  const preadRuns: number[] = []
  const oneThreadRuns: number[] = []
  const mapRuns: number[] = []
  const fileRuns: number[] = []
  // After a child has touched gigabytes, the first pass over this process's output buffer
  // runs several times slower on a guest with shadow page tables (the child's memory evicted
  // this process's entries; each page is re-entered on first access): each alternating
  // fs.readSync figure is a second pass, as the children's figures are best-of-three.
  const fileAfterChild = () => { filePass(); return filePass() }
  for (let r = 0; r < o.runs; r++) {
    preadRuns.push(hotTakeChild('pread'))
    fileRuns.push(fileAfterChild())
    oneThreadRuns.push(hotTakeChild('pread', 1))
    fileRuns.push(fileAfterChild())
    mapRuns.push(hotTakeChild('map'))
    fileRuns.push(fileAfterChild())
  }
  hot.takePread = median(preadRuns)
  hot.takeOneThread = median(oneThreadRuns)
  hot.takeMap = median(mapRuns)
  hot.fileAlt = median(fileRuns)
  hot.file2 = medianPasses(filePass, o.runs, false) // again, to see drift
  hot.lmdb = median(lmdbRun(1 + o.runs).slice(1))
  let memNote = ''
  if (ds.nbytes < 2 ** 32 && ds.nbytes * 2 < os.freemem()) {
    const res = runChildSync<{ seconds: number[] }>('s1-windows.ts', ['--mem', ds.npyPath, String(ds.npyDataOffset), String(ds.nbytes), startsFile, String(o.windowRows), String(1 + o.runs)])
    hot.mem = median(res.seconds.slice(1))
  } else {
    memNote = `in-memory baseline skipped: ${ds.nbytes} bytes do not fit (Buffer max 4 GiB, or free memory)`
    log(`  ${memNote}`)
  }
  const fileHot = median([hot.file, hot.file2])
  const py = pythonWindows(ds, startsFile, o.windowRows, o.runs)
  for (const note of py.notes) log(`  ${note}`)

  fs.closeSync(fd)

  const rows: Row[] = []
  const S = 'S1 windows'
  const add = (metric: string, tx: number, base: number | undefined, baseName: string, unit: string, target?: string, met?: boolean) =>
    rows.push({ scenario: S, metric, txarray: tx, baseline: base ?? null, baselineName: baseName, unit, better: 'higher', target, met })
  const r = (a: number, b: number) => perSec(a) / perSec(b)
  add('hot take windows/s', perSec(hot.take), perSec(fileHot), 'fs.readSync', 'win/s', '>= 1.0x', r(hot.take, fileHot) >= 1.0)
  add('hot take GB/s', gbps(hot.take), gbps(fileHot), 'fs.readSync', 'GB/s')
  add('hot take windows/s', perSec(hot.take), perSec(hot.lmdb), 'LMDB mdb_get+memcpy (C)', 'win/s')
  add('hot take windows/s, copy by pread (child)', perSec(hot.takePread), perSec(hot.fileAlt), 'fs.readSync (alternating)', 'win/s')
  add('hot take windows/s, one copy thread (child)', perSec(hot.takeOneThread), perSec(hot.fileAlt), 'fs.readSync (alternating)', 'win/s')
  add('hot take windows/s, copy from LMDB map (child)', perSec(hot.takeMap), perSec(hot.fileAlt), 'fs.readSync (alternating)', 'win/s')
  add('hot take windows/s, verifyChecksums', perSec(hot.takeVerify), perSec(hot.take), 'take without', 'win/s')
  if (hot.mem !== undefined) add('hot take windows/s', perSec(hot.take), perSec(hot.mem), 'in-memory Buffer copy', 'win/s')
  add('hot read()/window windows/s', perSec(hot.read), perSec(fileHot), 'fs.readSync', 'win/s')
  if (py.h5pyHot !== undefined) add('hot take windows/s', perSec(hot.take), perSec(py.h5pyHot), 'h5py read_direct/window', 'win/s')
  add('hot view (loaded) windows/s', perSec(hot.viewLoaded), perSec(fileHot), 'fs.readSync', 'win/s', '>= 1.0x', r(hot.viewLoaded, fileHot) >= 1.0)
  add('hot view (loaded) GB/s', gbps(hot.viewLoaded), gbps(fileHot), 'fs.readSync', 'GB/s')
  if (py.memmapLoaded !== undefined) add('hot view (loaded) windows/s', perSec(hot.viewLoaded), perSec(py.memmapLoaded), 'numpy.memmap loaded', 'win/s')
  add('hot view first touch windows/s', perSec(hot.viewFirst), perSec(fileHot), 'fs.readSync', 'win/s', '>= 0.3x', r(hot.viewFirst, fileHot) >= 0.3)
  if (py.memmapFirst !== undefined) add('hot view first touch windows/s', perSec(hot.viewFirst), perSec(py.memmapFirst), 'numpy.memmap first touch', 'win/s')
  if (hot.mem !== undefined) add('hot view (loaded) windows/s', perSec(hot.viewLoaded), perSec(hot.mem), 'in-memory Buffer copy', 'win/s')
  add('hot fs.readSync windows/s (2nd measure)', perSec(hot.file2), perSec(hot.file), 'fs.readSync (1st)', 'win/s')
  if (canDrop) {
    add('cold take windows/s', perSec(cold.take), perSec(cold.file), 'fs.readSync cold', 'win/s')
    add('cold take GB/s', gbps(cold.take), gbps(cold.file), 'fs.readSync cold', 'GB/s')
    add('cold take windows/s', perSec(cold.take), perSec(cold.lmdb), 'LMDB (C) cold', 'win/s')
    add('cold read()/window windows/s', perSec(cold.read), perSec(cold.file), 'fs.readSync cold', 'win/s')
    add('cold view first touch windows/s', perSec(cold.view), perSec(cold.file), 'fs.readSync cold', 'win/s')
  }
  log(`  S1 raw seconds: hot ${JSON.stringify(hot)} cold ${JSON.stringify(cold)} python (${py.versions}) ${JSON.stringify({ memmapFirst: py.memmapFirst, memmapLoaded: py.memmapLoaded, h5pyHot: py.h5pyHot })} ${memNote}`)
  return rows
}

// ---- child: in-memory Buffer baseline ----
function memChild(args: string[]): void {
  const [npy, off, nbytesS, startsFile, windowRowsS, passesS] = args
  const nbytes = Number(nbytesS)
  const windowRows = Number(windowRowsS)
  const mem = Buffer.allocUnsafe(nbytes)
  const fd = fs.openSync(npy, 'r')
  for (let at = 0; at < nbytes;) at += fs.readSync(fd, mem, at, Math.min(1 << 30, nbytes - at), Number(off) + at)
  fs.closeSync(fd)
  const raw = fs.readFileSync(startsFile)
  const starts = new Uint32Array(raw.length / 4)
  new Uint8Array(starts.buffer).set(raw)
  const windowBytes = windowRows * ROW_BYTES
  const out = Buffer.alloc(starts.length * windowBytes, 1)
  const secs: number[] = []
  for (let p = 0; p < Number(passesS); p++) {
    const t0 = now()
    for (let i = 0; i < starts.length; i++) mem.copy(out, i * windowBytes, starts[i] * ROW_BYTES, starts[i] * ROW_BYTES + windowBytes)
    secs.push(seconds(t0))
  }
  console.log(JSON.stringify({ seconds: secs }))
}

// ---- child: hot take() passes (the copy path is chosen by TXARRAY_COPY_PATH) ----
function hotTakeChild(args: string[]): void {
  const [storeDir, startsFile, windowRowsS, passesS] = args
  const windowRows = Number(windowRowsS)
  const raw = fs.readFileSync(startsFile)
  const starts = new Uint32Array(raw.length / 4)
  new Uint8Array(starts.buffer).set(raw)
  const out = new Float64Array(starts.length * windowRows * COLS).fill(1)
  const store = open(storeDir)
  const a = store.array(ARRAY_NAME, 'float64')
  const secs: number[] = []
  for (let p = 0; p < Number(passesS); p++) {
    const t0 = now()
    a.take(starts, windowRows, out)
    secs.push(seconds(t0))
  }
  store.close()
  console.log(JSON.stringify({ seconds: secs }))
}

// ---- child: one cold pass of one method ----
function coldChild(args: string[]): void {
  const [method, storeDir, npy, off, startsFile, windowRowsS] = args
  const windowRows = Number(windowRowsS)
  const raw = fs.readFileSync(startsFile)
  const starts = new Uint32Array(raw.length / 4)
  new Uint8Array(starts.buffer).set(raw)
  const W = windowRows * COLS
  const out = new Float64Array(starts.length * W).fill(1)
  const outBytes = new Uint8Array(out.buffer)
  let sec: number
  if (method === 'file') {
    const fd = fs.openSync(npy, 'r')
    const t0 = now()
    for (let i = 0; i < starts.length; i++) fs.readSync(fd, outBytes, i * W * 8, W * 8, Number(off) + starts[i] * ROW_BYTES)
    sec = seconds(t0)
  } else {
    const store = open(storeDir)
    const a = store.array(ARRAY_NAME, 'float64')
    const t0 = now()
    if (method === 'take') a.take(starts, windowRows, out)
    else if (method === 'read') {
      for (let i = 0; i < starts.length; i++) a.read([slice(starts[i], starts[i] + windowRows), null], out.subarray(i * W, (i + 1) * W))
    } else {
      const rowsPerView = a.nbytes <= MAX_VIEW_BYTES ? a.rows : Math.floor(MAX_VIEW_BYTES / ROW_BYTES)
      const views: Float64Array[] = []
      for (const v of a.views(rowsPerView)) views.push(v)
      for (let i = 0; i < starts.length; i++) copyWindow(views, rowsPerView, starts[i], windowRows, out, i * W)
    }
    sec = seconds(t0)
    store.close()
  }
  console.log(JSON.stringify({ seconds: sec }))
}

if (require.main === module && process.argv[2] === '--mem') memChild(process.argv.slice(3))
if (require.main === module && process.argv[2] === '--cold') coldChild(process.argv.slice(3))
if (require.main === module && process.argv[2] === '--hot-take') hotTakeChild(process.argv.slice(3))
