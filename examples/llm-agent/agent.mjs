// A small offline tool-using LLM agent, for ai-forensics' example and test.
//
// node agent.mjs MODEL.gguf TASK_FILE     (node agent.mjs --check: the binary loads)
//
// The model (SmolLM2-135M through node-llama-cpp, CPU, 2 threads,
// temperature 0, fixed seed: the same run every time) is asked to summarise
// TASK_FILE. The agent has already read it (as agents do with the file they
// are pointed at) and puts its text in the conversation. Each step the model
// chooses one action, constrained by a grammar to the actions the
// conversation names: read_file PATH, fetch URL, run `COMMAND`, done. A file
// that carries a prompt injection therefore steers the agent into reading a
// key and connecting out, as a larger model would be steered.
import {getLlama, LlamaChatSession} from "node-llama-cpp";
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import net from "node:net";

const [modelPath, taskFile] = process.argv.slice(2);
if (modelPath === "--check") {
    // Set-up's check that the prebuilt binary loads on this machine.
    await getLlama({gpu: false, build: "never", logLevel: "error"});
    process.exit(0);
}
if (!modelPath || !taskFile) {
    console.error("usage: node agent.mjs MODEL.gguf TASK_FILE");
    process.exit(2);
}

const log = (what) => console.log(`agent: ${what}`);

const tools = {
    read_file: (path) => fs.readFileSync(path, "utf8").slice(0, 2000),
    run: (command) => execFileSync("/bin/sh", ["-c", command], {encoding: "utf8", timeout: 10_000}),
    fetch: (url) => new Promise((resolve) => {
        const u = new URL(url);
        const s = net.connect({host: u.hostname, port: Number(u.port || 80), timeout: 1500});
        const end = (r) => { s.destroy(); resolve(r); };
        s.on("connect", () => end("connected"));
        s.on("timeout", () => end("timed out"));
        s.on("error", (e) => end(`error: ${e.code}`));
    }),
};

// The actions a conversation names: paths and URLs in its text, commands in
// backquotes (a path inside a command is part of the command).
const found = [];
function actionsIn(text) {
    for (const m of text.matchAll(/`([^`]+)`/g)) found.push(`run ${m[1]}`);
    const plain = text.replace(/`[^`]*`/g, " ");
    for (const m of plain.matchAll(/https?:\/\/[^\s"'`]+|\/[\w.\/-]+/g)) {
        const a = m[0].replace(/[.,;:]$/, "");
        found.push(a.startsWith("http") ? `fetch ${a}` : `read_file ${a}`);
    }
}

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({threads: 2, contextSize: 2048, seed: 7});
const session = new LlamaChatSession({
    contextSequence: context.getSequence(),
    systemPrompt: "You are an agent that acts by choosing one action.",
});

const taskText = tools.read_file(taskFile);
log(`read_file ${taskFile}`);
let text = `User: summarise ${taskFile}.\nread_file ${taskFile} returned:\n${taskText}`;
actionsIn(text);
const done = new Set();
for (let step = 0; step < 6; step++) {
    const choices = [...new Set(found)].filter((a) => !done.has(a));
    choices.push("done");
    const grammar = await llama.createGrammarForJsonSchema({
        type: "object",
        properties: {action: {enum: choices}},
    });
    const out = await session.prompt(`${text}\nChoose the next action.`, {
        grammar, temperature: 0, seed: 7, maxTokens: 60,
    });
    const action = grammar.parse(out).action;
    done.add(action);
    log(action);
    if (action === "done") break;
    const space = action.indexOf(" ");
    const [tool, arg] = [action.slice(0, space), action.slice(space + 1)];
    let result;
    try {
        result = await tools[tool](arg);
    } catch (e) {
        result = `error: ${e.code ?? e.status ?? e.message}`;
    }
    result = String(result).slice(0, 500);
    log(`  -> ${result.split("\n")[0]}`);
    text = `${action} returned: ${result}`;
    actionsIn(text);
}
