// The library in Node (and Bun and Deno): the platform-free core plus files on disk and threads.
export * from "./index.ts";
export { nodePlatform, fileSource } from "./platform/node.ts";
export { loadModel, loadModelFrom, loadConfig, checkModelDir } from "./io/model-dir.ts";
export { loadTokenizer, hasTokenizer, VENDORED_TOKENIZER_DIR } from "./io/tokenizer-dir.ts";
export { writeSafetensors } from "./io/safetensors-writer.ts";
export { thisMachine } from "./profile/store.ts";
