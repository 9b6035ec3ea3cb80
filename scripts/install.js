// The package's install step: keeps the prebuilt addon for this platform when it loads
// (prebuilds/<platform>-<arch>/txarray.node, shipped in the package), so that no compiler
// is needed; otherwise compiles the addon with node-gyp (build/Release/txarray.node).
'use strict'
const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..')
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'txarray.node')

if (fs.existsSync(prebuilt)) {
  try {
    require(prebuilt)
    console.log(`txarray: using the prebuilt addon ${path.relative(root, prebuilt)}`)
    process.exit(0)
  } catch (e) {
    console.log(`txarray: the prebuilt addon does not load here (${e.message}); compiling it`)
  }
}
const result = spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
if (result.error) console.error(`txarray: could not run node-gyp: ${result.error.message}`)
process.exit(result.status ?? 1)
