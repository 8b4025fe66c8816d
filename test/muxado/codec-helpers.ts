/** The engine's own frame collector, for the codec tests. */
export { collectFrames } from '../../src/muxado/decoder.js';
