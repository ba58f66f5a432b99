/**
 * The mock model server's public types: options, scripted turns, failures, recorded requests.
 */

/** Options for {@link startMockModelServer}. */
export interface MockModelServerOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Address to listen on (default 127.0.0.1), e.g. a real node's IP for an operator running in a pod. */
  host?: string;
  /** If set, only these API keys are accepted; any other key gets 401 `authentication_error`. */
  apiKeys?: string[];
  /** Delay before every response, unless a script or turn sets its own. */
  latencyMs?: number;
  /**
   * Prompts shorter than this (estimated tokens) are never cached. The real API has a
   * model-dependent minimum (1024–4096 tokens); the default 0 caches everything so that small
   * test prompts still show cache reads.
   */
  minCacheableTokens?: number;
  /** Called after each request to `/v1/messages` is answered (or abandoned by its client). */
  onResponse?: (request: RecordedRequest) => void;
}

/** A content block the scripted "model" produces. */
export type ScriptedBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

/** Every stop reason of the Messages API. */
export type StopReason =
  | 'end_turn'
  | 'max_tokens'
  | 'stop_sequence'
  | 'tool_use'
  | 'pause_turn'
  | 'refusal'
  | 'model_context_window_exceeded';

/** Token counts a turn may pin instead of the estimate. */
export interface UsageOverride {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

/** One scripted assistant answer. */
export interface ScriptedTurn {
  content: ScriptedBlock[];
  /** Defaults to 'tool_use' when `content` has tool_use blocks, else 'end_turn'. */
  stopReason?: StopReason;
  /** Reported as `stop_sequence` (meaningful with stopReason 'stop_sequence'). */
  stopSequence?: string;
  usage?: UsageOverride;
  /** Delay before this answer; overrides the script's and the server's latency. */
  latencyMs?: number;
}

/** What a function turn sees of the request it answers. */
export interface ScriptRequest {
  scriptKey: string;
  /** Number of assistant messages in the conversation = index of the turn being answered. */
  turnIndex: number;
  /** The request body as sent (already validated). */
  body: Readonly<Record<string, unknown>>;
  /** The tool_result blocks of the last user message, in order. */
  toolResults: ToolResult[];
}

/** A tool_result block from the request, its content flattened to text. */
export interface ToolResult {
  toolUseId: string;
  isError: boolean;
  /** String content as is; text blocks joined with newlines; other blocks as JSON. */
  text: string;
}

/** A turn computed from the request (e.g. echoing tool results). */
export type TurnFunction = (request: ScriptRequest) => ScriptedTurn;

/** A scripted turn, fixed or computed. */
export type TurnSource = ScriptedTurn | TurnFunction;

/** Per-script options. */
export interface ScriptOptions {
  /** Delay before every answer of this script, unless the turn sets its own. */
  latencyMs?: number;
}

/** A hostile answer (see HOSTILE MODE above). */
export type HostileAnswer =
  /** 200 with a message whose text block is `bytes` long, streamed in 64 KiB chunks, no Content-Length. */
  | { kind: 'oversized'; bytes: number }
  /** 200 with a body that is not JSON (cut off in the middle of a message). */
  | { kind: 'malformed' }
  /** 200 with a valid message holding `count` tool_use blocks for `tool`. */
  | { kind: 'many-tool-uses'; count: number; tool: string }
  /** 200 with a final text full of control characters, lone surrogates, bidi overrides and a fake key. */
  | { kind: 'odd-unicode' }
  /** 200 with a tool_use for `tool` whose input nests `depth` arrays deep. */
  | { kind: 'deep-input'; tool: string; depth: number }
  /** 200 with a tool_use whose input is `bytes` of control characters (6× that as JSON). */
  | { kind: 'control-input'; tool: string; bytes: number }
  /** `status` with `body` sent verbatim (e.g. an internal service's JSON with data in it). */
  | { kind: 'raw-error'; status: number; body: string };

/** The odd text {@link HostileAnswer} 'odd-unicode' sends, as the JSON string escapes that go on the wire. */
export const ODD_UNICODE_JSON = String.raw`nul:\u0000 bell:\u0007 esc:\u001b[31m crlf:\r\n ls:\u2028 rlo:\u202e lone:\ud800 bom:\ufeff emoji:\ud83d\udd11 zalgo:e\u0301\u0302 key:sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;

/** `error.type` values of the API's error bodies. */
export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'api_error'
  | 'overloaded_error';

/** An injected failure. */
export interface FailureSpec {
  /** HTTP status, e.g. 429, 500, 529, 401, 400. */
  status: number;
  /** Defaults to the type the real API uses for `status` (429 → rate_limit_error, 529 → overloaded_error…). */
  type?: ApiErrorType;
  message?: string;
  /** Sent as `retry-after` (seconds), which the real API sends on 429 and the SDK honours. */
  retryAfterSeconds?: number;
  /** Sent as `retry-after-ms`: the SDK honours it first, the real API does not send it. Handy to keep SDK retries fast. */
  retryAfterMs?: number;
  /** Sent as `x-should-retry`, which overrides the SDK's retry decision. */
  shouldRetry?: boolean;
}

/** A server-wide outage: every request fails until it ends. */
export interface OutageSpec extends Partial<FailureSpec> {
  /** Epoch ms at which the outage ends by itself. */
  untilMs?: number;
  /** Alternative to `untilMs`: ends this long from now. Neither: lasts until {@link MockModelServer.endOutage}. */
  durationMs?: number;
}

/** A request received on `/v1/messages`, as observed by the server (a snapshot). */
export interface RecordedRequest {
  /** The `request-id` header sent back. */
  readonly requestId: string;
  /** The script it was attributed to ({@link DEFAULT_SCRIPT_KEY} for the default script); undefined when none matched. */
  readonly scriptKey: string | undefined;
  /** Number of assistant messages in the request, when it had a message list. */
  readonly turnIndex: number | undefined;
  /** The parsed JSON body; undefined if it was not a JSON object. */
  readonly body: Readonly<Record<string, unknown>> | undefined;
  /** The key from `Authorization: Bearer` or `x-api-key`. */
  readonly apiKey: string | undefined;
  /** The `anthropic-version` header. */
  readonly anthropicVersion: string | undefined;
  readonly receivedAt: number;
  /** HTTP status sent; undefined while in flight; 499 when the client left before the answer. */
  readonly status: number | undefined;
  /** The JSON body sent (or that would have been sent, if the client left). */
  readonly response: unknown;
}

/** A running mock server. */
export interface MockModelServer {
  /** Base URL for the SDK's `baseURL`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** Registers (or replaces) the turns answered to conversations whose first user message contains `key`. */
  script(key: string, turns: readonly TurnSource[], options?: ScriptOptions): void;
  /** Answers requests that match no script (recorded under {@link DEFAULT_SCRIPT_KEY}); undefined removes it. */
  defaultScript(respond: TurnFunction | undefined): void;
  /** Fails the next `count` requests (for `scriptKey`, or any) with `failure`. */
  failNext(count: number, failure: FailureSpec, scriptKey?: string): void;
  /** Fails every request until the outage ends; status defaults to 529 overloaded_error. */
  outage(spec?: OutageSpec): void;
  endOutage(): void;
  /** Holds every response for `scriptKey` until the returned function is called. */
  hold(scriptKey: string): () => void;
  /** Answers conversations whose first user message contains `key` with `answer` (raw bytes, no validation). */
  hostile(key: string, answer: HostileAnswer): void;
  /** Resolves with the script's requests once at least `count` have arrived (answered or not). */
  waitForRequest(scriptKey: string, count?: number, options?: { timeoutMs?: number }): Promise<RecordedRequest[]>;
  /** Resolves when no request is in flight (held, delayed or being answered). */
  idle(): Promise<void>;
  /** Requests answered 200 for `scriptKey` (all scripts if omitted). */
  calls(scriptKey?: string): number;
  /** Every request received for `scriptKey` (all if omitted), failed ones included, oldest first. */
  requests(scriptKey?: string): RecordedRequest[];
  /** Requests answered 200, all scripts together. */
  totalCalls(): number;
  /** Forgets scripts, failures, outage, holds (released), recorded requests and the prompt cache. */
  reset(): void;
  close(): Promise<void>;
}

/** Script key under which requests answered by {@link MockModelServer.defaultScript} are recorded. */
export const DEFAULT_SCRIPT_KEY = '(default)';
