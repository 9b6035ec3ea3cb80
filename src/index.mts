// The ES module entry point: the same objects as the CommonJS build (one copy of every
// class, so `instanceof` holds whichever way a program loads txarray).
export * from './index.js'
