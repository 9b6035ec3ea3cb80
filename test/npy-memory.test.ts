// A .npy larger than the memory the process may use: a 512 MiB file imports and exports
// in a child process whose peak RSS stays far below the file's size.
import * as assert from 'uvu/assert'
import { test } from 'uvu'
import { runChild } from './helpers/child'
import { tempDir } from './helpers/tmp'

const MIB = 2 ** 20

test('a 512 MiB .npy imports and exports with peak RSS under 200 MiB (1 MiB chunks, 16 MiB commits)', () => {
  const dir = tempDir()
  const out = JSON.parse(runChild('npy-memory.child.ts', ['roundtrip', dir, '512', '1', '16']))
  assert.is(out.bytes, 512 * MIB)
  assert.ok(out.equal, 'the exported file is byte for byte the imported one')
  assert.ok(out.commits >= 32, `committed in batches (${out.commits})`)
  const peak = Math.max(out.afterImport, out.afterExport)
  console.log(`  512 MiB: import ${out.importMs} ms, export ${out.exportMs} ms, peak RSS ${(peak / MIB).toFixed(0)} MiB (after writing the source: ${(out.afterWrite / MIB).toFixed(0)} MiB)`)
  assert.ok(peak < 200 * MIB, `peak RSS ${(peak / MIB).toFixed(0)} MiB`)
})

test.run()
