// Token ids of texts by transformers.js (@lenml/tokenizers) for a checkpoint folder's
// tokenizer.json + tokenizer_config.json: the golden reference for the sentence encoders'
// WordPiece (tests/model/text_encoder_test.cpp).
//
// Usage: node scripts/reference/wordpiece_ids.mjs <node_modules dir> <model dir> <texts.json> <out.json>
//   texts.json: ["text", ...]; out.json: [[ids with special tokens], ...]
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [nmArg, modelDir, textsPath, outPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nmArg), "noop.js"));
const { TokenizerLoader } = require("@lenml/tokenizers");
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer_config.json"), "utf8")),
});
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const out = texts.map((t) => Array.from(tok.encode(t, { add_special_tokens: true })));
fs.writeFileSync(outPath, JSON.stringify(out));
