#!/usr/bin/env node
// The txarray command. Runs the compiled library in dist/ (built by `npm install`,
// which runs the `prepare` script, or by `npm run build`).
'use strict'
try {
  require.resolve('../dist/cli/run.js')
} catch {
  process.stderr.write('txarray: the library is not built: run `npm install` or `npm run build` in the txarray package\n')
  process.exit(1)
}
require('../dist/cli/run.js')
