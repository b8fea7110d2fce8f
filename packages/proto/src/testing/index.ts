/** Test doubles that ship with proto so every package's unit tests share one implementation. */
export { memoryStreamPair } from './memory-stream.js'
