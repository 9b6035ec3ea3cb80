// Builds the native addon (node-gyp, incrementally) and copies it to
// prebuilds/<platform>-<arch>/txarray.node, the prebuilt addon the package ships and
// loads first. Run by `npm run prebuild` and before `npm pack` / `npm publish`.
'use strict'
const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..')

function nodeGyp(args) {
  const result = spawnSync('node-gyp', args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
  if (result.error || result.status !== 0) {
    console.error(`node-gyp ${args.join(' ')} failed${result.error ? `: ${result.error.message}` : ''}`)
    process.exit(result.status || 1)
  }
}

if (!fs.existsSync(path.join(root, 'build', 'Makefile'))) nodeGyp(['configure'])
nodeGyp(['build'])
const target = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)
fs.mkdirSync(target, { recursive: true })
fs.copyFileSync(path.join(root, 'build', 'Release', 'txarray.node'), path.join(target, 'txarray.node'))
console.log(`prebuilt ${path.relative(root, path.join(target, 'txarray.node'))}`)
