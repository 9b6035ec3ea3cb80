import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

/** A fresh empty directory under the OS temp dir, removed when the process exits. */
export function tempDir(prefix = 'txarray-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}
