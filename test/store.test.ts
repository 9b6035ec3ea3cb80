import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { tempDir } from './helpers/tmp'

test('a created array survives commit, close and reopen', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create('x', { dtype: 'int32', shape: [3, 2] })
  a.write(null, new Int32Array([1, 2, 3, 4, 5, 6]))
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal(again.list(), ['x'])
  assert.equal([...again.array('x').read().data], [1, 2, 3, 4, 5, 6])
  again.close()
})

test.run()
