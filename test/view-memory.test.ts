// Views cost address space and mappings, not memory: a clean block of a view is the data
// file's page cache (the kernel reclaims it), and the views of a handle map at most
// `mappedBlocks` blocks at once (each costs up to two of vm.max_map_count's mappings).
// Measured in a child process that creates the array and scans it, so that its memory and
// mappings are nobody else's.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open, slice } from '../src/index'
import { runChild } from './helpers/child'
import { tempDir } from './helpers/tmp'

const MiB = 2 ** 20

test('scanning a view 16x larger than the mapping budget: correct sum, mappings, anonymous and file-mapped memory bounded', () => {
  const mappedBlocks = 512 // 32 MiB of 64 KiB blocks
  const arrayMiB = 512
  const out = runChild('view.child.ts', ['scan', tempDir(), String(mappedBlocks), String(arrayMiB), '16'])
  const r = JSON.parse(out.trim().split('\n').at(-1)!)
  const anonGrowth = r.peakAnon - r.beforeScan.RssAnon
  const info = `RssAnon grew ${(anonGrowth / MiB).toFixed(1)} MiB during the scan; mappings ${r.mapsBefore} -> peak ${r.peakMaps}; ` +
    `scan ${r.scanMs} ms; ${r.stats.evictedBlocks} blocks unmapped by the budget`
  assert.is(r.length, (arrayMiB * MiB) / 8)
  assert.is(r.sum, r.expected, 'the sum of every element')
  assert.is(r.stats.mappedBlocksLimit, mappedBlocks)
  assert.ok(r.stats.evictedBlocks > 0, `clean blocks were unmapped (${info})`)
  assert.ok(r.stats.mappedBlocks <= mappedBlocks, `mapped blocks within the budget at the end (${info})`)
  assert.ok(r.peakMaps - r.mapsBefore <= 2 * mappedBlocks + 64, `mappings bounded by the budget (${info})`)
  assert.ok(anonGrowth < 64 * MiB, `anonymous memory stays under 64 MiB while scanning 512 MiB (${info})`)
  // Locating a block reads LMDB's B-tree, never the block's own pages in LMDB's map: file
  // pages mapped are the view's (within the budget, 32 MiB) and B-tree pages, not the array.
  const fileGrowth = r.peakFile - r.beforeScan.RssFile
  assert.ok(fileGrowth < 96 * MiB, `file pages mapped grew ${(fileGrowth / MiB).toFixed(1)} MiB while scanning 512 MiB (${info})`)
})

test('written blocks are spilled: writing through a view far beyond mappedBlocks, then commit() or abort()', () => {
  const dir = tempDir()
  const store = open(dir, { mappedBlocks: 16, sync: false })
  const n = (16 * MiB) / 4
  const a = store.create<'int32'>('w', { dtype: 'int32', shape: [n], blockBytes: 65536 })
  store.commit()
  const v = a.view()
  for (let i = 0; i < n; i++) v[i] = i ^ 0x5555
  // a fault maps a window of 256 KiB (4 blocks) after making room for it
  assert.ok(store.stats().mappedBlocks <= 16 + 4, `the budget holds with 256 written blocks: ${store.stats().mappedBlocks}`)
  assert.ok(store.stats().spilledBlocks > 0, 'written blocks were spilled')
  for (let i = 0; i < n; i += 999) if (v[i] !== (i ^ 0x5555)) assert.unreachable(`element ${i} is ${v[i]}`)
  store.commit()
  assert.ok(store.stats().mappedBlocks <= 16, `committed blocks are unmapped: ${store.stats().mappedBlocks}`)
  let sum = 0
  for (let i = 0; i < n; i++) sum += v[i] - (i ^ 0x5555)
  assert.is(sum, 0, 'after commit, the view maps the committed blocks again')
  assert.ok(store.stats().mappedBlocks <= 16 + 64, `back within the budget once clean: ${store.stats().mappedBlocks}`)
  for (let i = 0; i < n; i++) v[i] = -1
  store.abort()
  for (let i = 0; i < n; i += 777) if (v[i] !== (i ^ 0x5555)) assert.unreachable(`after abort, element ${i} is ${v[i]}`)
  store.close()
  const again = open(dir)
  const b = again.array('w', 'int32').read().data
  for (let i = 0; i < n; i++) if (b[i] !== (i ^ 0x5555)) assert.unreachable(`after reopen, element ${i} is ${b[i]}`)
  again.close()
})

test('random reads through a view far beyond mappedBlocks: the budget holds, values are right, blocks written in between stay', () => {
  // The budget's clock unmaps runs of picked blocks (joined across placeholders) after a
  // write scan of those runs only: a block written through the view is found there and kept.
  const dir = tempDir()
  const store = open(dir, { mappedBlocks: 32, sync: false })
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
  assert.ok(st.mappedBlocks <= 32 + written.size, `mapped ${st.mappedBlocks} blocks, budget 32 plus ${written.size} written`)
  store.commit()
  const back = open(dir).array('r', 'float64').read().data
  for (const [i, x] of written) assert.is(back[i], x, `element ${i} committed`)
  let others = 0
  for (let i = 0; i < back.length; i += 101) if (!written.has(i) && back[i] !== i) others++
  assert.is(others, 0, 'elements not written keep their values')
  store.close()
})

test('mappedBlocks is the budget stats() reports; mapped blocks grow as a view is touched', () => {
  const store = open(tempDir(), { mappedBlocks: 1000 })
  assert.is(store.stats().mappedBlocksLimit, 1000)
  assert.is(store.stats().mappedBlocks, 0)
  const a = store.create<'uint8'>('x', { dtype: 'uint8', shape: [4 * MiB], blockBytes: 65536 })
  a.view().fill(1)
  assert.is(store.stats().mappedBlocks, 64)
  assert.is(store.stats().evictedBlocks, 0)
  store.close()
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
