// Views cost address space and mappings, not memory: a clean block of a view is the data
// file's page cache (the kernel reclaims it), and the views of a handle hold at most
// `mappings` of vm.max_map_count's mappings at once (a mapped block costs 0 to 2 of them;
// by default every handle of a process shares one budget).
// Measured in a child process that creates the array and scans it, so that its memory and
// mappings are nobody else's.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as fs from 'node:fs'
import { ArgumentError, open, slice } from '../src/index'
import { runChild } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

const MiB = 2 ** 20
const mapCount = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1
const maxMapCount = () => Number(fs.readFileSync('/proc/sys/vm/max_map_count', 'utf8'))

test('scanning a view 16x larger than the mapping budget: correct sum, mappings, anonymous and file-mapped memory bounded', () => {
  const mappings = 512 // 32 MiB of 64 KiB blocks mapped side by side
  const arrayMiB = 512
  const out = runChild('view.child.ts', ['scan', tempDir(), String(mappings), String(arrayMiB), '16'])
  const r = JSON.parse(out.trim().split('\n').at(-1)!)
  const anonGrowth = r.peakAnon - r.beforeScan.RssAnon
  const info = `RssAnon grew ${(anonGrowth / MiB).toFixed(1)} MiB during the scan; mappings ${r.mapsBefore} -> peak ${r.peakMaps}; ` +
    `scan ${r.scanMs} ms; ${r.stats.evictedBlocks} blocks unmapped by the budget`
  assert.is(r.length, (arrayMiB * MiB) / 8)
  assert.is(r.sum, r.expected, 'the sum of every element')
  assert.is(r.stats.mappingsLimit, mappings)
  assert.ok(r.stats.evictedBlocks > 0, `clean blocks were unmapped (${info})`)
  assert.ok(r.stats.mappings <= mappings, `mappings within the budget at the end (${info})`)
  assert.ok(r.peakMaps - r.mapsBefore <= mappings + 64, `mappings in /proc/self/maps bounded by the budget (${info})`)
  assert.ok(anonGrowth < 64 * MiB, `anonymous memory stays under 64 MiB while scanning 512 MiB (${info})`)
  // Locating a block reads LMDB's B-tree, never the block's own pages in LMDB's map: file
  // pages mapped are the view's (within the budget, 32 MiB) and B-tree pages, not the array.
  const fileGrowth = r.peakFile - r.beforeScan.RssFile
  assert.ok(fileGrowth < 96 * MiB, `file pages mapped grew ${(fileGrowth / MiB).toFixed(1)} MiB while scanning 512 MiB (${info})`)
})

test('written blocks are spilled: writing through a view far beyond the mapping budget, then commit() or abort()', () => {
  const dir = tempDir()
  const store = open(dir, { mappings: 16, sync: false })
  const n = (16 * MiB) / 4
  const a = store.create<'int32'>('w', { dtype: 'int32', shape: [n], blockBytes: 65536 })
  store.commit()
  const v = a.view()
  for (let i = 0; i < n; i++) v[i] = i ^ 0x5555
  // a fault maps a window of 256 KiB (4 blocks, 5 mappings at most) after making room for it
  assert.ok(store.stats().mappings <= 16 + 5, `the budget holds with 256 written blocks: ${store.stats().mappings}`)
  assert.ok(store.stats().spilledBlocks > 0, 'written blocks were spilled')
  for (let i = 0; i < n; i += 999) if (v[i] !== (i ^ 0x5555)) assert.unreachable(`element ${i} is ${v[i]}`)
  store.commit()
  assert.ok(store.stats().mappings <= 16, `committed blocks are unmapped: ${store.stats().mappings}`)
  let sum = 0
  for (let i = 0; i < n; i++) sum += v[i] - (i ^ 0x5555)
  assert.is(sum, 0, 'after commit, the view maps the committed blocks again')
  assert.ok(store.stats().mappings <= 16 + 64, `back within the budget once clean: ${store.stats().mappings}`)
  for (let i = 0; i < n; i++) v[i] = -1
  store.abort()
  for (let i = 0; i < n; i += 777) if (v[i] !== (i ^ 0x5555)) assert.unreachable(`after abort, element ${i} is ${v[i]}`)
  store.close()
  const again = open(dir)
  const b = again.array('w', 'int32').read().data
  for (let i = 0; i < n; i++) if (b[i] !== (i ^ 0x5555)) assert.unreachable(`after reopen, element ${i} is ${b[i]}`)
  again.close()
})

test('random reads through a view far beyond the mapping budget: the budget holds, values are right, blocks written in between stay', () => {
  // The budget's clock unmaps runs of picked blocks (joined across placeholders) after a
  // write scan of those runs only: a block written through the view is found there and kept.
  const dir = tempDir()
  const store = open(dir, { mappings: 32, sync: false })
  const blocks = 512
  const perBlock = 65536 / 8
  const a = store.create<'float64'>('r', { dtype: 'float64', shape: [blocks * perBlock], blockBytes: 65536 })
  const init = new Float64Array(blocks * perBlock)
  for (let i = 0; i < init.length; i++) init[i] = i
  a.write([slice(0, init.length)], init)
  store.commit()
  const v = a.view()
  let seed = 7
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) % blocks
  const written = new Map<number, number>()
  for (let k = 0; k < 4000; k++) {
    const b = next()
    const i = b * perBlock + (k % perBlock)
    const want = written.get(i) ?? i
    if (v[i] !== want) assert.unreachable(`read ${k}: element ${i} is ${v[i]}, not ${want}`)
    if (k % 97 === 0) {
      v[i] = -k
      written.set(i, -k)
    }
  }
  const st = store.stats()
  // A written block stays mapped (2 mappings at most each, scattered as they are).
  assert.ok(st.mappings <= 32 + 2 * written.size, `${st.mappings} mappings, budget 32 plus ${written.size} written blocks`)
  store.commit()
  const back = open(dir).array('r', 'float64').read().data
  for (const [i, x] of written) assert.is(back[i], x, `element ${i} committed`)
  let others = 0
  for (let i = 0; i < back.length; i += 101) if (!written.has(i) && back[i] !== i) others++
  assert.is(others, 0, 'elements not written keep their values')
  store.close()
})

test('mappings is the budget stats() reports; blocks mapped side by side cost one mapping each', () => {
  const store = open(tempDir(), { mappings: 1000 })
  assert.is(store.stats().mappingsLimit, 1000)
  assert.is(store.stats().mappings, 0)
  assert.is(store.stats().mappedBlocks, 0)
  const a = store.create<'uint8'>('x', { dtype: 'uint8', shape: [4 * MiB], blockBytes: 65536 })
  const mapsBefore = mapCount()
  a.view().fill(1)
  const grown = mapCount() - mapsBefore
  assert.is(store.stats().mappedBlocks, 64)
  // The kernel's maps grow by 64 at most: 64 blocks where the region's placeholder was, what
  // lies past the last block staying a placeholder. The budget counts the region's start
  // as a placeholder too (the block at either edge is charged as if it split one): 65, and
  // 4 for the region's own mappings (block states, reservation, scan-window pool, spare).
  assert.is(store.stats().mappings, 65 + 4)
  assert.ok(grown <= 64, `/proc/self/maps grew by ${grown} lines`)
  assert.is(store.stats().evictedBlocks, 0)
  store.close()
})

test("handles that set no mappings share the process's budget: three quarters of vm.max_map_count", () => {
  const limit = Math.floor(maxMapCount() / 4) * 3
  const a = open(tempDir())
  const b = open(tempDir())
  const own = open(tempDir(), { mappings: 100 })
  assert.is(a.stats().mappingsLimit, limit)
  assert.is(b.stats().mappingsLimit, limit)
  assert.is(own.stats().mappingsLimit, 100)
  const before = b.stats().mappedBlocks
  const x = a.create<'uint8'>('x', { dtype: 'uint8', shape: [MiB], blockBytes: 65536 })
  x.view().fill(1)
  assert.is(b.stats().mappedBlocks - before, 16, "a's 16 blocks are counted in the budget b shares")
  assert.is(own.stats().mappedBlocks, 0, 'a handle with a budget of its own counts only its own')
  a.close()
  b.close()
  own.close()
})

test('the option mappedBlocks, a budget of blocks before, is refused with a message naming mappings', () => {
  const e = throwsCode(() => open(tempDir(), { mappedBlocks: 100 } as never), ArgumentError, 'TXA_ARGUMENT')
  assert.match(e.message, /replaced by mappings/)
})

test('views are not memory of the JavaScript heap: making 2 GiB of views with views() starts (almost) no major GC meanwhile', () => {
  // V8 counts an ArrayBuffer's bytes as external memory and starts a major GC each time
  // that grows by 64 MiB; a view holds none of its bytes (they are the region's), so the
  // views a scan makes chunk after chunk must not look like allocations while they live.
  const r = JSON.parse(runChild('view-gc.child.ts', [tempDir()]).trim().split('\n').at(-1)!)
  assert.is(r.elements, 64 * (4 << 20))
  assert.ok(r.majorsDuring <= 2, `${r.majorsDuring} major GCs while making 512 views of 4 MiB (${r.majorsAll} in all)`)
})

test.run()
