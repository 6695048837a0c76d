// Writes tests/data/llama2c/tokenizer.golden.jsonl: the ids (and decoded text) that
// @lenml/tokenizers (transformers.js, an independent implementation of HF tokenizers) produces
// with the tokenizer.json that `medforge model convert --from llama2c` wrote for the aidreams260K
// tokenizer (tok512.bin). tests/model/llama2c_test.cpp checks that llama2.c's own encoder
// (src/model/llama2c.cpp) gives the same ids, i.e. that the converted tokenizer is faithful.
// The first line records the sha256 of that tokenizer.json, so a converter change that alters it
// makes the test ask for this script to be rerun.
//
// Usage: node scripts/make_golden_llama2c_tokenizer.mjs <node_modules dir> <converted dir> [out]
//   e.g. medforge model convert --from llama2c \
//          --input ../shared/data/models/llama2c_aidreams260K/aidreams260K.bin \
//          --tokenizer ../shared/data/models/llama2c_aidreams260K/tok512.bin --out /tmp/aid
//        node scripts/make_golden_llama2c_tokenizer.mjs build/npm/node_modules /tmp/aid
// Made with @lenml/tokenizers 3.7.2.
import { createRequire } from "node:module";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const nm = path.resolve(process.argv[2] ?? "build/npm/node_modules");
const dir = path.resolve(process.argv[3] ?? "/tmp/aid");
const out = path.resolve(process.argv[4] ?? "tests/data/llama2c/tokenizer.golden.jsonl");
const require = createRequire(path.join(nm, "noop.js"));
const { TokenizerLoader } = require("@lenml/tokenizers");

const jsonText = fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8");
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(jsonText),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
});

// mulberry32: deterministic PRNG, so the corpus is the same on every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const R = rng(20261130);
const pick = (a) => a[Math.floor(R() * a.length)];
const int = (n) => Math.floor(R() * n);

// Not in the corpus, by design: the literal special-token texts "<s>", "</s>", "<unk>" (HF splits
// them out as special tokens, llama2.c's encoder does not) and U+2581 (HF's normalizer cannot tell
// it from a space).
const fixed = [
  "", " ", "a", "\n", "  ", "  leading", "trailing  ", "hello world", "Hello World",
  "Echoes of vectors unfold, a gentle hum of precision",
  "I sense the nodes, whispers of gradients unfolding like petals.",
  "The quick brown fox jumps over the lazy dog.", "It's a test; isn't it?",
  "Axial CT of the chest shows a 3.2 cm spiculated nodule in the right upper lobe (arrow).",
  "T2-weighted MRI demonstrates hyperintense signal in the left temporal lobe.",
  "Kaplan–Meier survival curves (p < 0.001, log-rank test).", "Ki-67 ≈ 80%, ×400",
  "σ = 0.5, ε → 0, λ μ", "café naïve Zürich Dvořák", "胸部CT显示右肺上叶结节。", "😀👍🏽🩺",
  "1234567890", "12345 678 9", "\t\ttabs\tand\nnewlines\n\n", "a  b   c    d",
  "whisperswhispers unfoldingunfolding", "<html> & {json: [1, 2]} $x = y^2 / 3;",
];
const words = ["whispers", "unfold", "gentle", "hum", "precision", "vectors", "nodes", "I",
  "sense", "the", "of", "a", "like", "shifting", "distant", "echoes", "gradients", "Contrast",
  "edges", "sharpen", "bloom", "receptive", "fields", "surface", "patterns", "lung", "nodule",
  "CT", "MRI", "lesion", "tumor", "biopsy", "2.5", "mm", "%", "°C", "–", "σ", "ö", "ε", "λ", "μ"];
const punct = [",", ".", ";", ":", "!", "?", "\"", "'", "(", ")", "-", "/", "=", "^"];
const spaces = [" ", " ", " ", "  ", "\n", "\t", " \n"];
function randChars() {
  const blocks = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x4e00, 0x4fff],
                  [0x1f300, 0x1f64f], [0x1, 0x1f]];
  let s = "";
  const n = 1 + int(10);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(blocks);
    s += String.fromCodePoint(lo + int(hi - lo + 1));
  }
  return s;
}
const corpus = [...fixed];
while (corpus.length < 1500) {
  let s = R() < 0.3 ? pick(spaces) : "";
  const k = 1 + int(14);
  for (let i = 0; i < k; i++) {
    const r = R();
    s += r < 0.75 ? pick(words) : r < 0.9 ? pick(punct) : randChars();
    if (R() < 0.7) s += pick(spaces);
  }
  corpus.push(s);
}

const sha = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, "tokenizer.json"))).digest("hex");
const lines = [JSON.stringify({ meta: { tokenizer_json_sha256: sha, reference: "@lenml/tokenizers 3.7.2" } })];
for (const text of corpus) {
  const ids = tok.encode(text, { add_special_tokens: false });
  const decoded = ids.length ? tok.decode(ids, { skip_special_tokens: false }) : "";
  lines.push(JSON.stringify({ text, ids, decoded }));
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, lines.join("\n") + "\n");
console.log(`${out}: ${lines.length - 1} strings`);
