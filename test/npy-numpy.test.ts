// numpy itself (/usr/bin/python3, in a child process) reads what exportNpy and NpyWriter
// write, with mmap_mode='r', and writes the files importNpy reads: versions 1.0, 2.0
// and 3.0, big-endian, Fortran order. Skipped, with a message, only when numpy cannot
// be imported.
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type DType, NpyWriter, dtypes, open } from '../src/index'
import { sameBytes } from './helpers/bytes'
import { tsxRegister } from './helpers/child'
import { numpyPython } from './helpers/npy'
import { tempDir } from './helpers/tmp'

const py = numpyPython()
const run = 'python' in py ? test : test.skip
if ('skip' in py) console.log(`\n  SKIPPED numpy interoperability tests: ${py.skip}\n`)

function python(script: string, args: string[] = []): string {
  if (!('python' in py)) throw new Error(py.skip)
  const r = spawnSync(py.python, ['-c', script, ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`)
  return r.stdout
}

const NP: Record<DType, string> = {
  int8: 'int8', uint8: 'uint8', int16: 'int16', uint16: 'uint16', int32: 'int32', uint32: 'uint32',
  int64: 'int64', uint64: 'uint64', float32: 'float32', float64: 'float64',
}

run('numpy.load(mmap_mode="r") reads every dtype exportNpy writes, values and shape exact', () => {
  const dir = tempDir()
  const store = open(path.join(dir, 'store'), { sync: false })
  const files: string[] = []
  for (const dtype of dtypes) {
    const a = store.create(dtype, { dtype, shape: [0, 3, 2], blockBytes: 4096 })
    // values numpy can recompute: i * 37 mod 127, signed types negated on odd i
    const n = 1000 * 6
    const vals = Array.from({ length: n }, (_, i) => ((i * 37) % 127) * (dtype.startsWith('int') && i % 2 ? -1 : 1))
    const data = a.read().data.constructor as unknown as { from(v: unknown[]): never }
    a.append(data.from(dtype.endsWith('64') && dtype !== 'float64' ? vals.map(BigInt) : vals))
    const file = path.join(dir, `${dtype}.npy`)
    a.exportNpy(file, { chunkBytes: 1000 })
    files.push(file)
  }
  const out = python(`
import sys, numpy as np
for f in sys.argv[1:]:
    a = np.load(f, mmap_mode='r')
    i = np.arange(a.size, dtype=np.int64)
    v = (i * 37) % 127
    if a.dtype.kind == 'i': v = np.where(i % 2 == 1, -v, v)
    ok = a.shape == (1000, 3, 2) and isinstance(a, np.memmap) and (a.reshape(-1) == v.astype(a.dtype)).all()
    print(a.dtype.name, a.dtype.byteorder, ok)
`, files)
  const lines = out.trim().split('\n')
  assert.is(lines.length, dtypes.length)
  lines.forEach((line, i) => {
    const [name, , ok] = line.split(' ')
    assert.is(name, NP[dtypes[i]])
    assert.is(ok, 'True', line)
  })
  store.close()
})

run('importNpy reads what numpy writes: versions 1.0/2.0/3.0, big-endian, Fortran order', () => {
  const dir = tempDir()
  python(`
import sys, numpy as np
from numpy.lib import format as fmt
d = sys.argv[1]
base = np.arange(2 * 3 * 4 * 5, dtype='<f8').reshape(2, 3, 4, 5) * 1.5 - 7
for ver in [(1, 0), (2, 0), (3, 0)]:
    for order in ['C', 'F']:
        for bo in ['<', '>']:
            a = np.array(base, dtype=bo + 'f8', order=order)
            with open(f"{d}/v{ver[0]}-{order}-{'be' if bo == '>' else 'le'}.npy", 'wb') as f:
                fmt.write_array(f, a, version=ver)
np.save(f"{d}/i2-be-F.npy", np.asfortranarray(np.arange(-50, 50, dtype='>i2').reshape(10, 10)))
`, [dir])
  const store = open(path.join(dir, 'store'), { sync: false })
  const expected = Float64Array.from({ length: 120 }, (_, i) => i * 1.5 - 7)
  let n = 0
  for (const file of fs.readdirSync(dir).filter((f) => f.startsWith('v'))) {
    const r = store.importNpy(file, path.join(dir, file), { chunkBytes: 64 })
    assert.is(r.version, `${file[1]}.0`)
    assert.is(r.fortranOrder, file.includes('-F-'))
    assert.is(r.bigEndian, file.includes('-be'))
    const a = store.array(file)
    assert.equal(a.shape, [2, 3, 4, 5])
    sameBytes(a.read().data, expected, file)
    n++
  }
  assert.is(n, 12)
  store.importNpy('i2', path.join(dir, 'i2-be-F.npy'), { chunkBytes: 6 })
  assert.equal(Array.from(store.array('i2', 'int16').read().data), Array.from({ length: 100 }, (_, i) => i - 50))
  store.close()
})

run('NpyWriter: numpy reads a valid file after every append', () => {
  const dir = tempDir()
  const file = path.join(dir, 'grow.npy')
  const w = NpyWriter.create(file, { dtype: 'float32', shape: [0, 4] })
  const seen: string[] = []
  for (let k = 0; k < 4; k++) {
    w.append(Float32Array.from({ length: 4 * (k + 1) }, (_, i) => k * 100 + i))
    seen.push(python(`
import sys, numpy as np
a = np.load(sys.argv[1], mmap_mode='r')
print(a.shape, float(a.sum()))
`, [file]).trim())
  }
  w.close()
  // rows 1, 3, 6, 10; sums of k*100*4(k+1) + (4(k+1))(4(k+1)-1)/2 accumulated
  let sum = 0
  const expected = [1, 2, 3, 4].map((m, k) => {
    sum += k * 100 * 4 * m + (4 * m * (4 * m - 1)) / 2
    return `(${(m * (m + 1)) / 2}, 4) ${sum.toFixed(1)}`
  })
  assert.equal(seen, expected)
})

run('exportNpy follow: the file grows with another process\'s commits and numpy reads it in between', async () => {
  const dir = tempDir()
  const storeDir = path.join(dir, 'store')
  const store = open(storeDir)
  const a = store.create<'int64'>('stream', { dtype: 'int64', shape: [0, 2] })
  a.append(BigInt64Array.of(0n, 0n, 1n, -1n))
  store.commit()
  const file = path.join(dir, 'stream.npy')
  const controller = new AbortController()
  const shapes: number[][] = []
  const reads: string[] = []
  const done = a.exportNpy(file, {
    follow: true,
    signal: controller.signal,
    onAppend: (shape) => {
      shapes.push(shape)
      reads.push(python(`
import sys, numpy as np
a = np.load(sys.argv[1], mmap_mode='r')
print(a.shape[0], int(a[:, 0].sum()), int(a[:, 1].sum()))
`, [file]).trim())
    },
  })
  // a second process appends 3 commits of 2 rows [i, -i]
  const child = spawn(process.execPath, ['-r', tsxRegister, '-e', `
const { open } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'index.ts'))})
const s = open(${JSON.stringify(storeDir)})
let i = 2
const step = () => {
  const a = s.array('stream')
  a.append(BigInt64Array.of(BigInt(i), BigInt(-i), BigInt(i + 1), BigInt(-i - 1)))
  s.commit()
  i += 2
  if (i < 8) setTimeout(step, 150); else s.close()
}
setTimeout(step, 150)
`], { stdio: 'inherit' })
  await new Promise((resolve) => child.on('exit', resolve))
  for (let t = 0; t < 50 && shapes.at(-1)?.[0] !== 8; t++) await new Promise((r) => setTimeout(r, 50))
  controller.abort()
  const result = await done
  assert.equal(result.shape, [8, 2])
  assert.equal(shapes.at(-1), [8, 2])
  assert.is(reads[0], '2 1 -1')
  assert.is(reads.at(-1), '8 28 -28')
  for (const r of reads) {
    const [rows, s0, s1] = r.split(' ').map(Number)
    assert.is(s0, (rows * (rows - 1)) / 2, 'numpy saw whole rows only')
    assert.is(s1, -s0)
  }
  store.close()
})

test.run()
