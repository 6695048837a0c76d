// Drives `medforge serve` with the official OpenAI Node client (npm "openai" v4): one plain and
// one streaming chat completion. Prints one JSON line with what it got; exits 1 on any error.
// Usage: node openai_client.mjs <node_modules dir> <base url> <model> <api key>
import { createRequire } from "node:module";
import path from "node:path";

const [, , modules, baseURL, model, apiKey] = process.argv;
const require = createRequire(path.join(modules, "noop.js"));
const OpenAI = require("openai");

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
const messages = [{ role: "user", content: "Say hello." }];

const plain = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
let streamed = "";
let finish = null;
let usage = null;
let chunks = 0;
const stream = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0, stream: true });
for await (const chunk of stream) {
  chunks += 1;
  const c = chunk.choices[0];
  if (c && c.delta && c.delta.content) streamed += c.delta.content;
  if (c && c.finish_reason) finish = c.finish_reason;
  if (chunk.usage) usage = chunk.usage;
}
const models = await client.models.list();
console.log(JSON.stringify({
  plain_content: plain.choices[0].message.content,
  plain_finish: plain.choices[0].finish_reason,
  plain_usage: plain.usage,
  stream_content: streamed,
  stream_finish: finish,
  stream_usage: usage,
  chunks,
  model_ids: models.data.map((m) => m.id),
}));
