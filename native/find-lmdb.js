// Prints the folder of the LMDB C sources bundled in the `lmdb` npm package, for
// binding.gyp. (The package's "exports" hide package.json, so walk up from its entry.)
'use strict'
const fs = require('fs')
const path = require('path')
let dir = path.dirname(require.resolve('lmdb'))
while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
const sources = path.join(dir, 'dependencies', 'lmdb-data-v1', 'libraries', 'liblmdb')
if (!fs.existsSync(path.join(sources, 'mdb.c'))) {
  throw new Error('LMDB sources not found in the lmdb package at ' + sources)
}
process.stdout.write(path.relative(path.join(__dirname, '..'), sources))
