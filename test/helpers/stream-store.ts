import { open } from '../../src/index'
import type { Store } from '../../src/index'
import { tempDir } from './tmp'

/** A new store in a temporary folder holding one committed, empty int32 array 'x'. */
export function storeWithEmptyArray(): { dir: string; s: Store } {
  const dir = tempDir()
  const s = open(dir)
  s.create('x', { dtype: 'int32', shape: [0] })
  s.commit()
  return { dir, s }
}
