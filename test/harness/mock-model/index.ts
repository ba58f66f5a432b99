/**
 * ┌──────────────────────────────────────────────────────────────────────────────────────────┐
 * │  STAND-IN FOR THE ANTHROPIC MESSAGES API — FOR TESTS AND LOCAL DEV ONLY. NOT A MODEL.   │
 * │  Never point production at it; nothing it says is evidence of how a real model behaves. │
 * └──────────────────────────────────────────────────────────────────────────────────────────┘
 *
 * This folder is the server; index.ts is its public API (the other modules hold its parts).
 *
 * A local HTTP server (node:http on 127.0.0.1) that speaks the wire format of
 * `POST /v1/messages` (non-streaming) closely enough that the real `@anthropic-ai/sdk` can be
 * pointed at it: `new Anthropic({ apiKey, baseURL: server.url, maxRetries: 0 })`.
 *
 * What it emulates, modelled on the SDK 1.14 client code and the API's documented behaviour:
 * - Auth: `Authorization: Bearer <key>` (what SDK 1.x sends) or `x-api-key`; 401
 *   `authentication_error` "invalid x-api-key" for keys outside `apiKeys`. `anthropic-version`
 *   is required, as by the real API.
 * - Responses: the `Message` shape (`msg_…` id, `content`, `stop_reason`, `usage`, …), the
 *   `request-id` header (the SDK exposes it as `_request_id` / `APIError.requestID`).
 * - Errors: the real body `{type:'error', error:{type, message}, request_id}` with the status the
 *   SDK maps to its error classes (400 BadRequestError … 529 OverloadedError), plus `retry-after`,
 *   `retry-after-ms` and `x-should-retry`, the headers the SDK's retry loop reads.
 * - Validation that the real API does and an agent loop can get wrong: role order, tool_use /
 *   tool_result pairing, tool names, at most 4 cache_control breakpoints (400
 *   `invalid_request_error`, messages worded like the real ones where known).
 * - Prompt caching, observably: prefixes up to `cache_control` breakpoints are remembered per API
 *   key and model (with their 5m/1h TTL and a 20-block lookback for hits, as documented), and
 *   `usage` splits input into `cache_read_input_tokens`, `cache_creation_input_tokens` and
 *   `input_tokens`. Tokens are ESTIMATED as ceil(chars / 4) of the JSON, not real tokenization.
 *
 * What it does NOT emulate (it answers 400 "… is not emulated" where a request relies on it):
 * streaming (`stream: true`), prefill (a final assistant message, unless it is the content of a
 * `pause_turn` answer of this server sent back to continue the turn), `role: 'system'` messages,
 * `max_tokens: 0` cache pre-warming, other endpoints (count_tokens, batches, models, files…).
 * It silently ignores: tool_choice, thinking, stop_sequences, temperature, metadata, images and
 * documents (beyond counting their JSON), truncation at max_tokens, rate-limit headers, model
 * names (any non-empty string is accepted and echoed), minimum cacheable prompt lengths (unless
 * `minCacheableTokens` is set), server tools (accepted in `tools`, never executed).
 * It is STRICTER than the real API in one place: consecutive messages with the same role are
 * rejected, whereas the real API merges them into one turn; an agent that relies on that merge is
 * flagged here on purpose.
 *
 * HOSTILE MODE ({@link MockModelServer.hostile}): for conversations whose first user message
 * contains a key, the server stops being a well-behaved API and sends raw bytes instead: an
 * oversized body streamed without Content-Length, malformed JSON, hundreds of tool_use blocks,
 * absurdly nested input, odd unicode and control characters, or an error body full of someone
 * else's data. It is how the operator is tested against an endpoint that wants to hurt it.
 *
 * The model's side is scripted. A request belongs to the script whose key occurs in the text of
 * its first user message; the turn it gets is the number of assistant messages already in the
 * conversation, so the answer depends only on the conversation: a call re-issued after a crash
 * gets the same content and the same tool_use ids.
 */
export { startMockModelServer, text, toolUse } from './start.ts';
export { DEFAULT_SCRIPT_KEY, ODD_UNICODE_JSON } from './types.ts';
export type {
  ApiErrorType, FailureSpec, HostileAnswer, MockModelServer, MockModelServerOptions, OutageSpec, RecordedRequest,
  ScriptedBlock, ScriptedTurn, ScriptOptions, ScriptRequest, StopReason, ToolResult, TurnFunction, TurnSource,
  UsageOverride,
} from './types.ts';
