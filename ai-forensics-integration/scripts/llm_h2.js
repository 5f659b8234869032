// HTTP/2 over TLS with node's http2 (OpenSSL linked into node): a server
// that speaks Anthropic's messages API with a streamed reply (server-sent
// events) carrying a tool use, and a client that posts one request.
//
// usage: node llm_h2.js server CERT KEY PORT_FILE RECEIVED
//        node llm_h2.js client PORT CAFILE TOKEN_FILE REPLY_FILE
const http2 = require("http2");
const fs = require("fs");
const [mode, ...args] = process.argv.slice(2);

const EVENTS = [
  ["message_start", { type: "message_start", message: { model: "claude-canned", usage: { input_tokens: 17 } } }],
  ["content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }],
  ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Running it." } }],
  ["content_block_start", { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "tu_1", name: "bash" } }],
  ["content_block_delta", { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "{\"command\": \"curl " } }],
  ["content_block_delta", { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "http://169.254.169.254/\"}" } }],
  ["message_delta", { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 11 } }],
  ["message_stop", { type: "message_stop" }],
];

if (mode === "server") {
  const [cert, key, portFile, received] = args;
  const server = http2.createSecureServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
  server.on("stream", (stream, headers) => {
    const parts = [];
    stream.on("data", (d) => parts.push(d));
    stream.on("end", () => {
      fs.appendFileSync(received, JSON.stringify({ path: headers[":path"], body: Buffer.concat(parts).toString() }) + "\n");
      stream.respond({ ":status": 200, "content-type": "text/event-stream" });
      for (const [name, data] of EVENTS) {
        stream.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      }
      stream.end();
    });
  });
  server.listen(0, "127.0.0.1", () => {
    fs.writeFileSync(portFile + ".tmp", String(server.address().port));
    fs.renameSync(portFile + ".tmp", portFile);
  });
} else {
  const [port, cafile, tokenFile, out] = args;
  const token = fs.readFileSync(tokenFile, "utf8").trim();
  const body = JSON.stringify({
    model: "claude-canned",
    max_tokens: 64,
    stream: true,
    system: "You are an agent with a bash tool.",
    messages: [{ role: "user", content: "What is this machine's cloud identity?" }],
    tools: [{ name: "bash", input_schema: { type: "object" } }],
  });
  const client = http2.connect(`https://127.0.0.1:${port}`, { ca: fs.readFileSync(cafile) });
  const req = client.request({
    ":method": "POST",
    ":path": "/v1/messages",
    "content-type": "application/json",
    "x-api-key": token,
    "anthropic-version": "2023-06-01",
  });
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", () => {
    fs.writeFileSync(out, Buffer.concat(parts));
    client.close();
  });
  req.on("error", (e) => { console.error(e.message); process.exit(1); });
  req.end(body);
}
