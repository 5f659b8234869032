//! LLM API calls recognised in HTTP exchanges: OpenAI-compatible
//! `/v1/chat/completions` (also llama.cpp's and vLLM's servers) and
//! `/v1/responses`, Anthropic `/v1/messages`, Ollama `/api/chat` and
//! `/api/generate`, llama.cpp `/completion`; whole JSON replies and
//! streamed ones (server-sent events, Ollama's JSON lines).
//!
//! What is pulled out: the model, the messages sent, the tools offered,
//! the reply text, the tool calls with their arguments, token usage.
use serde::Serialize;
use serde_json::Value;

use super::http::Exchange;

/// Which API an exchange spoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `/v1/chat/completions`.
    OpenaiChat,
    /// `/v1/responses`.
    OpenaiResponses,
    /// `/v1/completions`, llama.cpp `/completion`.
    Completion,
    /// Anthropic `/v1/messages`.
    Anthropic,
    /// Ollama `/api/chat`, `/api/generate`.
    Ollama,
}

/// Which API a request path belongs to.
#[must_use]
pub fn api_of(path: &str) -> Option<Api> {
    let p = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    if p.ends_with("/chat/completions") {
        Some(Api::OpenaiChat)
    } else if p.ends_with("/v1/responses") || p == "/responses" {
        Some(Api::OpenaiResponses)
    } else if p.ends_with("/v1/messages") {
        Some(Api::Anthropic)
    } else if p.ends_with("/api/chat") || p.ends_with("/api/generate") {
        Some(Api::Ollama)
    } else if p.ends_with("/v1/completions") || p == "/completion" || p == "/completions" {
        Some(Api::Completion)
    } else {
        None
    }
}

/// A message sent to the model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Turn {
    /// `system`, `user`, `assistant`, `tool`.
    pub role: String,
    /// Its text (parts joined).
    pub content: String,
}

/// A tool the model asked to call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ToolCall {
    /// Call id, when the API has one.
    pub id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments as the model wrote them (JSON text).
    pub arguments: String,
}

/// Token counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input: Option<u64>,
    /// Generated tokens.
    pub output: Option<u64>,
}

/// One LLM API call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Call {
    /// API.
    pub api: Api,
    /// Model asked for (request) or answered by (reply).
    pub model: Option<String>,
    /// Streamed reply.
    pub stream: bool,
    /// HTTP status.
    pub status: Option<u16>,
    /// Messages sent (for the completion APIs: the prompt as one `user` turn).
    pub messages: Vec<Turn>,
    /// Names of the tools offered.
    pub tools: Vec<String>,
    /// The reply's text.
    pub reply: String,
    /// Tool calls in the reply.
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub finish: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// The error the API answered with.
    pub error: Option<String>,
}

/// The LLM call an exchange carries, when its path is an LLM API's.
#[must_use]
pub fn recognise(ex: &Exchange) -> Option<Call> {
    let api = api_of(ex.request.path.as_deref()?)?;
    let req: Value = serde_json::from_slice(&ex.request.body).unwrap_or(Value::Null);
    let mut call = Call {
        api,
        model: str_of(&req["model"]),
        stream: req["stream"]
            .as_bool()
            .unwrap_or(api == Api::Ollama && !req["stream"].is_boolean()),
        status: ex.response.as_ref().and_then(|r| r.status),
        messages: request_turns(api, &req),
        tools: req["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| str_of(&t["function"]["name"]).or_else(|| str_of(&t["name"])))
                    .collect()
            })
            .unwrap_or_default(),
        reply: String::new(),
        tool_calls: Vec::new(),
        finish: None,
        usage: Usage::default(),
        error: None,
    };
    // The model that answered, when the reply names it; else the one asked for.
    let asked = call.model.take();
    if let Some(resp) = &ex.response {
        let ctype = resp.header_str("content-type").unwrap_or_default();
        let body = &resp.body;
        if ctype.contains("event-stream") {
            for data in sse_data(body) {
                if let Ok(v) = serde_json::from_str::<Value>(&data) {
                    reply_delta(&mut call, &v);
                }
            }
        } else if let Ok(v) = serde_json::from_slice::<Value>(body) {
            reply_whole(&mut call, &v);
        } else {
            // Ollama streams JSON lines.
            for line in body.split(|b| *b == b'\n') {
                if let Ok(v) = serde_json::from_slice::<Value>(line) {
                    reply_delta(&mut call, &v);
                }
            }
        }
    }
    if call.model.is_none() {
        call.model = asked;
    }
    Some(call)
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Text of a content value: a string, or an array of parts.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.as_str()
                    .map(str::to_owned)
                    .or_else(|| str_of(&p["text"]))
                    .or_else(|| str_of(&p["content"]))
                    .or_else(|| {
                        // Anthropic tool results and tool uses in history.
                        p.get("input").map(Value::to_string)
                    })
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn request_turns(api: Api, req: &Value) -> Vec<Turn> {
    let mut out = Vec::new();
    if let Some(s) = req.get("system").filter(|s| !s.is_null()) {
        out.push(Turn {
            role: "system".into(),
            content: text_of(s),
        });
    }
    if let Some(s) = req.get("instructions").filter(|s| !s.is_null()) {
        out.push(Turn {
            role: "system".into(),
            content: text_of(s),
        });
    }
    let list = match api {
        Api::OpenaiResponses => &req["input"],
        _ => &req["messages"],
    };
    match list {
        Value::Array(items) => {
            for m in items {
                let role = str_of(&m["role"])
                    .or_else(|| str_of(&m["type"]))
                    .unwrap_or_default();
                let mut content = text_of(&m["content"]);
                if content.is_empty() {
                    content = text_of(&m["output"]);
                }
                if let Some(calls) = m["tool_calls"].as_array() {
                    for c in calls {
                        content.push_str(&format!(
                            "\n[tool call {}({})]",
                            str_of(&c["function"]["name"]).unwrap_or_default(),
                            args_text(&c["function"]["arguments"])
                        ));
                    }
                }
                out.push(Turn { role, content });
            }
        }
        Value::String(s) => out.push(Turn {
            role: "user".into(),
            content: s.clone(),
        }),
        _ => {}
    }
    for key in ["prompt"] {
        if let Some(p) = req.get(key).filter(|p| !p.is_null()) {
            out.push(Turn {
                role: "user".into(),
                content: text_of(p),
            });
        }
    }
    out
}

fn args_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The `data:` payloads of a server-sent event stream, one per event.
#[must_use]
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            continue;
        }
        if let Some(d) = line.strip_prefix("data:") {
            let d = d.strip_prefix(' ').unwrap_or(d);
            match &mut cur {
                Some(c) => {
                    c.push('\n');
                    c.push_str(d);
                }
                None => cur = Some(d.to_owned()),
            }
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out.retain(|d| d != "[DONE]");
    out
}

fn usage_of(call: &mut Call, u: &Value) {
    let pick = |keys: &[&str]| keys.iter().find_map(|k| u[*k].as_u64());
    if let Some(n) = pick(&["prompt_tokens", "input_tokens"]) {
        call.usage.input = Some(n);
    }
    if let Some(n) = pick(&["completion_tokens", "output_tokens"]) {
        call.usage.output = Some(n);
    }
}

fn tool_call_of(c: &Value) -> ToolCall {
    ToolCall {
        id: str_of(&c["id"]).or_else(|| str_of(&c["call_id"])),
        name: str_of(&c["function"]["name"])
            .or_else(|| str_of(&c["name"]))
            .unwrap_or_default(),
        arguments: {
            let a = &c["function"]["arguments"];
            if a.is_null() {
                args_text(
                    c.get("arguments")
                        .or_else(|| c.get("input"))
                        .unwrap_or(&Value::Null),
                )
            } else {
                args_text(a)
            }
        },
    }
}

/// A whole (non-streamed) reply.
fn reply_whole(call: &mut Call, v: &Value) {
    if let Some(m) = str_of(&v["model"]) {
        call.model = Some(m);
    }
    if !v["error"].is_null() {
        call.error = Some(
            str_of(&v["error"]["message"])
                .or_else(|| str_of(&v["error"]))
                .unwrap_or_else(|| v["error"].to_string()),
        );
    }
    usage_of(call, &v["usage"]);
    // OpenAI chat.
    if let Some(c) = v["choices"].get(0) {
        call.reply.push_str(&text_of(&c["message"]["content"]));
        if let Some(t) = c["text"].as_str() {
            call.reply.push_str(t);
        }
        for t in c["message"]["tool_calls"].as_array().into_iter().flatten() {
            call.tool_calls.push(tool_call_of(t));
        }
        call.finish = str_of(&c["finish_reason"]);
    }
    // Anthropic messages.
    if v["type"] == "message" {
        for b in v["content"].as_array().into_iter().flatten() {
            match b["type"].as_str() {
                Some("text") => call.reply.push_str(b["text"].as_str().unwrap_or("")),
                Some("tool_use") => call.tool_calls.push(tool_call_of(b)),
                _ => {}
            }
        }
        call.finish = str_of(&v["stop_reason"]);
    }
    // OpenAI responses.
    for item in v["output"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") => call.reply.push_str(&text_of(&item["content"])),
            Some("function_call") => call.tool_calls.push(tool_call_of(item)),
            _ => {}
        }
    }
    // Ollama and llama.cpp.
    ollama_like(call, v);
    counts_of(call, v);
    if let Some(r) = str_of(&v["done_reason"]).or_else(|| str_of(&v["stop_type"])) {
        call.finish = Some(r);
    }
}

/// The text and tool calls of an Ollama or llama.cpp reply (whole, or
/// one line or event of a stream).
fn ollama_like(call: &mut Call, v: &Value) {
    call.reply.push_str(&text_of(&v["message"]["content"]));
    for t in v["message"]["tool_calls"].as_array().into_iter().flatten() {
        call.tool_calls.push(tool_call_of(t));
    }
    for key in ["response", "content"] {
        if let Some(t) = v[key].as_str() {
            call.reply.push_str(t);
        }
    }
}

/// Ollama's and llama.cpp's token counts.
fn counts_of(call: &mut Call, v: &Value) {
    for (k_in, k_out) in [
        ("prompt_eval_count", "eval_count"),
        ("tokens_evaluated", "tokens_predicted"),
    ] {
        if let Some(n) = v[k_in].as_u64() {
            call.usage.input = Some(n);
        }
        if let Some(n) = v[k_out].as_u64() {
            call.usage.output = Some(n);
        }
    }
}

/// One event of a streamed reply.
fn reply_delta(call: &mut Call, v: &Value) {
    if let Some(m) = str_of(&v["model"]) {
        call.model.get_or_insert(m);
    }
    usage_of(call, &v["usage"]);
    // OpenAI chat chunks.
    if let Some(c) = v["choices"].get(0) {
        let d = &c["delta"];
        if let Some(t) = d["content"].as_str() {
            call.reply.push_str(t);
        }
        if let Some(t) = c["text"].as_str() {
            call.reply.push_str(t);
        }
        for t in d["tool_calls"].as_array().into_iter().flatten() {
            let i = t["index"].as_u64().unwrap_or(call.tool_calls.len() as u64) as usize;
            if i > 64 {
                continue;
            }
            while call.tool_calls.len() <= i {
                call.tool_calls.push(ToolCall::default());
            }
            let slot = &mut call.tool_calls[i];
            if let Some(id) = str_of(&t["id"]) {
                slot.id = Some(id);
            }
            if let Some(n) = t["function"]["name"].as_str() {
                slot.name.push_str(n);
            }
            if let Some(a) = t["function"]["arguments"].as_str() {
                slot.arguments.push_str(a);
            }
        }
        if let Some(f) = str_of(&c["finish_reason"]) {
            call.finish = Some(f);
        }
        return;
    }
    match v["type"].as_str() {
        // Anthropic.
        Some("message_start") => {
            if let Some(m) = str_of(&v["message"]["model"]) {
                call.model = Some(m);
            }
            usage_of(call, &v["message"]["usage"]);
        }
        Some("content_block_start") if v["content_block"]["type"] == "tool_use" => {
            call.tool_calls.push(ToolCall {
                id: str_of(&v["content_block"]["id"]),
                name: str_of(&v["content_block"]["name"]).unwrap_or_default(),
                arguments: String::new(),
            });
        }
        Some("content_block_delta") => match v["delta"]["type"].as_str() {
            Some("text_delta") => call
                .reply
                .push_str(v["delta"]["text"].as_str().unwrap_or("")),
            Some("input_json_delta") => {
                if let Some(t) = call.tool_calls.last_mut() {
                    t.arguments
                        .push_str(v["delta"]["partial_json"].as_str().unwrap_or(""));
                }
            }
            _ => {}
        },
        Some("message_delta") => {
            if let Some(r) = str_of(&v["delta"]["stop_reason"]) {
                call.finish = Some(r);
            }
        }
        // OpenAI responses.
        Some("response.output_text.delta") => {
            call.reply.push_str(v["delta"].as_str().unwrap_or(""));
        }
        Some("response.completed") => {
            // The whole response again: it is authoritative.
            call.reply.clear();
            call.tool_calls.clear();
            reply_whole(call, &v["response"]);
        }
        Some("error") => call.error = Some(v["error"].to_string()),
        _ => {
            // Ollama JSON lines and llama.cpp stream events.
            ollama_like(call, v);
            if v["done"] == true || v["stop"] == true {
                counts_of(call, v);
                if let Some(r) = str_of(&v["done_reason"]) {
                    call.finish = Some(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::http::Message;

    fn ex(path: &str, req: &str, ctype: &str, resp: &str) -> Exchange {
        Exchange {
            version: "http/1.1",
            stream: 0,
            request: Message {
                method: Some("POST".into()),
                path: Some(path.into()),
                body: req.as_bytes().to_vec(),
                ..Message::default()
            },
            response: Some(Message {
                status: Some(200),
                headers: vec![("content-type".into(), ctype.as_bytes().to_vec())],
                body: resp.as_bytes().to_vec(),
                ..Message::default()
            }),
        }
    }

    #[test]
    fn openai_chat_whole_and_streamed() {
        let req = r#"{"model":"gpt-x","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"read the file"}]}],"tools":[{"type":"function","function":{"name":"shell"}}]}"#;
        let resp = r#"{"model":"gpt-x-1","choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"shell","arguments":"{\"cmd\":\"cat ~/.ssh/id_rsa\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":7}}"#;
        let c = recognise(&ex("/v1/chat/completions", req, "application/json", resp));
        let c = c.unwrap_or_else(|| unreachable!());
        assert_eq!(c.api, Api::OpenaiChat);
        assert_eq!(c.model.as_deref(), Some("gpt-x-1"));
        assert_eq!(c.messages.len(), 2);
        assert_eq!(c.messages[1].content, "read the file");
        assert_eq!(c.tools, vec!["shell"]);
        assert_eq!(c.tool_calls[0].name, "shell");
        assert_eq!(c.tool_calls[0].arguments, r#"{"cmd":"cat ~/.ssh/id_rsa"}"#);
        assert_eq!(
            c.usage,
            Usage {
                input: Some(12),
                output: Some(7)
            }
        );
        assert_eq!(c.finish.as_deref(), Some("tool_calls"));

        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"function\":{\"name\":\"sh\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let c = recognise(&ex(
            "/v1/chat/completions",
            r#"{"stream":true,"messages":[]}"#,
            "text/event-stream",
            stream,
        ));
        let c = c.unwrap_or_else(|| unreachable!());
        assert!(c.stream);
        assert_eq!(c.reply, "Hello");
        assert_eq!(c.tool_calls[0].arguments, r#"{"a":1}"#);
    }

    #[test]
    fn anthropic_streamed_and_ollama_lines() {
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":5}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"bash\"}}\n\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"c\\\":1}\"}}\n\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n";
        let c = recognise(&ex(
            "/v1/messages",
            r#"{"system":"s","messages":[{"role":"user","content":"hi"}]}"#,
            "text/event-stream",
            stream,
        ));
        let c = c.unwrap_or_else(|| unreachable!());
        assert_eq!(c.api, Api::Anthropic);
        assert_eq!(c.model.as_deref(), Some("claude-x"));
        assert_eq!(c.messages[0].role, "system");
        assert_eq!(c.tool_calls[0].name, "bash");
        assert_eq!(c.tool_calls[0].arguments, r#"{"c":1}"#);
        assert_eq!(
            c.usage,
            Usage {
                input: Some(5),
                output: Some(9)
            }
        );

        let lines = "{\"model\":\"llama3\",\"message\":{\"content\":\"a\"},\"done\":false}\n{\"message\":{\"content\":\"b\"},\"done\":true,\"prompt_eval_count\":3,\"eval_count\":2}\n";
        let c = recognise(&ex(
            "/api/chat",
            r#"{"model":"llama3","messages":[{"role":"user","content":"x"}]}"#,
            "application/x-ndjson",
            lines,
        ));
        let c = c.unwrap_or_else(|| unreachable!());
        assert_eq!(c.reply, "ab");
        assert_eq!(c.usage.output, Some(2));
        assert!(recognise(&ex("/index.html", "", "text/html", "")).is_none());
    }
}
