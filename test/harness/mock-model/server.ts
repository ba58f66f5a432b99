/**
 * MockModelServerImpl: the HTTP server, its scripts, injected failures, outages and gates.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Outcome, errorOutcome, newId } from './errors.ts';
import { sendHostile } from './hostile.ts';
import { apiKeyOf, headerValue, parseJson, readBody, watchClient } from './http.ts';
import { PromptCache, promptSegments } from './prompt-cache.ts';
import { type Block, InvalidRequestError, type JsonObject, type ParsedRequest, isObject, parseRequest } from './request-parsing.ts';
import { type Script, ScriptError, callTurnFunction, checkScriptedToolNames, contentKey, firstUserText, messageBody, toolResultsOf } from './scripted-answers.ts';
import { DEFAULT_SCRIPT_KEY, type FailureSpec, type HostileAnswer, type MockModelServer, type MockModelServerOptions, type OutageSpec, type RecordedRequest, type ScriptOptions, type ScriptedTurn, type TurnFunction, type TurnSource } from './types.ts';

/** The server's own, updatable copy of a {@link RecordedRequest}. */
type MutableRecord = { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] };

interface PendingFailure {
  remaining: number;
  failure: FailureSpec;
  scriptKey: string | undefined;
}

interface Outage {
  failure: FailureSpec;
  untilMs: number | undefined;
}

interface Gate {
  opened: Promise<void>;
  open: () => void;
}

interface RequestWaiter {
  scriptKey: string;
  count: number;
  resolve: (requests: RecordedRequest[]) => void;
  reject: (error: Error) => void;
}

/** The mock model server behind {@link MockModelServer}: HTTP on 127.0.0.1, scripts, failures and gates. */
export class MockModelServerImpl implements MockModelServer {
  private readonly options: MockModelServerOptions;
  private readonly server: Server;
  private readonly cache: PromptCache;
  private readonly shutdown = new AbortController();
  private scripts = new Map<string, Script>();
  private fallback: TurnFunction | undefined;
  private failures: PendingFailure[] = [];
  private currentOutage: Outage | undefined;
  private gates = new Map<string, Gate>();
  private records: MutableRecord[] = [];
  /** Contents of the pause_turn answers sent, as {@link contentKey}: a request ending with one continues that turn. */
  private paused = new Set<string>();
  private waiters: RequestWaiter[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private address: AddressInfo | undefined;
  private hostileAnswers = new Map<string, HostileAnswer>();

  constructor(options: MockModelServerOptions) {
    this.options = options;
    this.cache = new PromptCache(options.minCacheableTokens ?? 0);
    this.server = createServer((req, res) => { void this.handle(req, res); });
  }

  get port(): number {
    if (!this.address) throw new Error('mock-model-server is not listening');
    return this.address.port;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.address = this.server.address() as AddressInfo;
  }

  script(key: string, turns: readonly TurnSource[], options: ScriptOptions = {}): void {
    if (key === '') throw new Error('mock-model-server: a script key must be non-empty (it is searched for in the first user message)');
    this.scripts.set(key, { turns: [...turns], latencyMs: options.latencyMs });
  }

  defaultScript(respond: TurnFunction | undefined): void {
    this.fallback = respond;
  }

  failNext(count: number, failure: FailureSpec, scriptKey?: string): void {
    if (!Number.isInteger(count) || count < 1) throw new Error(`mock-model-server: failNext count must be a positive integer, got ${count}`);
    this.failures.push({ remaining: count, failure, scriptKey });
  }

  outage(spec: OutageSpec = {}): void {
    const { untilMs, durationMs, ...failure } = spec;
    const end = untilMs ?? (durationMs === undefined ? undefined : Date.now() + durationMs);
    this.currentOutage = { failure: { ...failure, status: failure.status ?? 529 }, untilMs: end };
  }

  endOutage(): void {
    this.currentOutage = undefined;
  }

  hostile(key: string, answer: HostileAnswer): void {
    this.hostileAnswers.set(key, answer);
  }

  hold(scriptKey: string): () => void {
    if (this.gates.has(scriptKey)) throw new Error(`mock-model-server: script ${scriptKey} is already held`);
    let open = (): void => undefined;
    const opened = new Promise<void>((resolve) => { open = resolve; });
    this.gates.set(scriptKey, { opened, open });
    return () => {
      open();
      if (this.gates.get(scriptKey)?.opened === opened) this.gates.delete(scriptKey);
    };
  }

  waitForRequest(scriptKey: string, count = 1, options: { timeoutMs?: number } = {}): Promise<RecordedRequest[]> {
    const arrived = this.requests(scriptKey);
    if (arrived.length >= count) return Promise.resolve(arrived);
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const waiter: RequestWaiter = {
        scriptKey,
        count,
        resolve: (requests) => { clearTimeout(timer); resolve(requests); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
      // A clear message beats a bare test timeout when the operator never calls the model.
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`mock-model-server: waited ${timeoutMs}ms for ${count} request(s) for script ${scriptKey}; ${this.requests(scriptKey).length} arrived (all requests by script: ${this.describeArrivals()})`));
      }, timeoutMs);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => { this.idleWaiters.push(resolve); });
  }

  calls(scriptKey?: string): number {
    return this.requests(scriptKey).filter((r) => r.status === 200).length;
  }

  requests(scriptKey?: string): RecordedRequest[] {
    return this.records.filter((r) => scriptKey === undefined || r.scriptKey === scriptKey).map((r) => ({ ...r }));
  }

  totalCalls(): number {
    return this.calls();
  }

  reset(): void {
    for (const gate of this.gates.values()) gate.open();
    this.gates = new Map();
    this.scripts = new Map();
    this.fallback = undefined;
    this.failures = [];
    this.currentOutage = undefined;
    this.records = [];
    this.hostileAnswers = new Map();
    this.cache.clear();
    this.paused.clear();
  }

  async close(): Promise<void> {
    this.shutdown.abort();
    for (const gate of this.gates.values()) gate.open();
    for (const waiter of this.waiters) waiter.reject(new Error('mock-model-server closed'));
    this.waiters = [];
    const closed = new Promise<void>((resolve) => this.server.close(() => { resolve(); }));
    this.server.closeAllConnections();
    await closed;
  }

  // ─── request handling ───

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    try {
      await this.answer(req, res);
    } catch (error) {
      if (!res.headersSent) {
        const message = `mock-model-server internal error: ${error instanceof Error ? error.message : String(error)}`;
        const requestId = newId('req');
        this.send(res, errorOutcome(requestId, { status: 500, message, shouldRetry: false }), requestId);
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.notifyIdle();
    }
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newId('req');
    const rawBody = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || path !== '/v1/messages') {
      const message = `mock-model-server: ${req.method ?? '?'} ${path} is not emulated; only POST /v1/messages (non-streaming) is`;
      this.send(res, errorOutcome(requestId, { status: 404, message }), requestId);
      return;
    }
    const client = watchClient(res);
    const body = parseJson(rawBody);
    const hostileKey = [...this.hostileAnswers.keys()].find((key) => firstUserText(body).includes(key));
    if (hostileKey !== undefined) {
      const record = this.recordArrival(req, requestId, body);
      record.scriptKey = hostileKey;
      const hostile = this.hostileAnswers.get(hostileKey) as HostileAnswer;
      record.status = hostile.kind === 'raw-error' ? hostile.status : 200;
      await sendHostile(res, hostile, requestId, client.hasLeft);
      this.options.onResponse?.({ ...record });
      return;
    }
    const record = this.recordArrival(req, requestId, body);
    const outcome = this.decide(record, body);
    // A client that leaves (killed operator, aborted call) ends the wait: nothing is left to hold.
    await Promise.race([this.waitBeforeAnswering(record.scriptKey, outcome.latencyMs ?? this.options.latencyMs), client.gone]);
    record.response = outcome.body;
    if (client.hasLeft()) {
      record.status = 499;
    } else {
      this.send(res, outcome, requestId);
      record.status = outcome.status;
    }
    this.options.onResponse?.({ ...record });
  }

  private recordArrival(req: IncomingMessage, requestId: string, body: unknown): MutableRecord {
    const record: MutableRecord = {
      requestId,
      scriptKey: this.attribute(body),
      turnIndex: isObject(body) && Array.isArray(body.messages) ? this.answersIn(body.messages as { role?: unknown; content?: unknown }[]) : undefined,
      body: isObject(body) ? body : undefined,
      apiKey: apiKeyOf(req),
      anthropicVersion: headerValue(req, 'anthropic-version'),
      receivedAt: Date.now(),
      status: undefined,
      response: undefined,
    };
    this.records.push(record);
    this.notifyWaiters();
    return record;
  }

  private matchingScripts(body: unknown): string[] {
    const firstText = firstUserText(body);
    return [...this.scripts.keys()].filter((key) => firstText.includes(key));
  }

  /** The script whose key is in the first user message; else the default script's key; undefined if neither (or ambiguous). */
  private attribute(body: unknown): string | undefined {
    const matches = this.matchingScripts(body);
    if (matches.length > 1) return undefined;
    return matches[0] ?? (this.fallback ? DEFAULT_SCRIPT_KEY : undefined);
  }

  /** Everything the answer depends on, decided at arrival so that the order of arrival decides who gets injected failures. */
  private decide(record: RecordedRequest, body: unknown): Outcome {
    const { requestId } = record;
    const authFailure = this.checkAuth(record.apiKey);
    if (authFailure) return errorOutcome(requestId, authFailure);
    if (!record.anthropicVersion) return errorOutcome(requestId, { status: 400, message: 'anthropic-version: header is required' });
    let request: ParsedRequest;
    try {
      // A turn paused more than once arrives as one assistant message: its last answer is a suffix.
      request = parseRequest(body, (content) => content.some((_, i) => this.paused.has(contentKey(content.slice(i)))));
    } catch (error) {
      if (error instanceof InvalidRequestError) return errorOutcome(requestId, { status: 400, message: error.message });
      throw error;
    }
    try {
      return this.scriptedAnswer(record, request);
    } catch (error) {
      if (error instanceof ScriptError) return errorOutcome(requestId, { status: 400, message: `mock script error: ${error.message}`, shouldRetry: false });
      throw error;
    }
  }

  private checkAuth(apiKey: string | undefined): FailureSpec | undefined {
    if (apiKey === undefined || apiKey === '') return { status: 401, message: 'x-api-key header is required' };
    if (this.options.apiKeys && !this.options.apiKeys.includes(apiKey)) return { status: 401, message: 'invalid x-api-key' };
    return undefined;
  }

  private scriptedAnswer(record: RecordedRequest, request: ParsedRequest): Outcome {
    const { scriptKey } = record;
    const turnIndex = this.answersIn(request.messages);
    const turn = this.resolveTurn(scriptKey, turnIndex, request, record.body ?? {});
    const latencyMs = turn.latencyMs ?? this.scripts.get(scriptKey ?? '')?.latencyMs ?? this.options.latencyMs;
    const injected = this.takeInjectedFailure(scriptKey);
    if (injected) return errorOutcome(record.requestId, injected, latencyMs);
    const cacheScope = `${record.apiKey ?? ''}\0${request.model}`;
    const usage = this.cache.account(promptSegments(request, cacheScope), Date.now());
    const answer = messageBody(request.model, turn, scriptKey ?? DEFAULT_SCRIPT_KEY, turnIndex, usage);
    if (answer.stop_reason === 'pause_turn') this.paused.add(contentKey(answer.content as Block[]));
    return { status: 200, body: answer, headers: {}, latencyMs };
  }

  /**
   * How many of this server's answers the conversation holds: one per assistant message, except
   * that a paused turn continued more than once arrives as one message holding several answers.
   */
  private answersIn(messages: readonly { role?: unknown; content?: unknown }[]): number {
    let answers = 0;
    for (const m of messages) {
      if (m.role !== 'assistant') continue;
      const blocks = Array.isArray(m.content) ? m.content as Block[] : [];
      let start = 0;
      for (let end = 1; end <= blocks.length; end++) {
        if (this.paused.has(contentKey(blocks.slice(start, end)))) { answers++; start = end; }
      }
      if (start < blocks.length || blocks.length === 0) answers++;
    }
    return answers;
  }

  private resolveTurn(scriptKey: string | undefined, turnIndex: number, request: ParsedRequest, body: Readonly<JsonObject>): ScriptedTurn {
    if (scriptKey === undefined) {
      const matches = this.matchingScripts(body);
      if (matches.length > 1) throw new ScriptError(`the first user message matches several mock scripts (${matches.join(', ')}); use unique markers`);
      throw new ScriptError(`no mock script matches this conversation: none of the keys [${[...this.scripts.keys()].join(', ')}] occurs in the first user message, and no defaultScript is set`);
    }
    const source = scriptKey === DEFAULT_SCRIPT_KEY ? this.fallback : this.scripts.get(scriptKey)?.turns[turnIndex];
    if (source === undefined) {
      const length = this.scripts.get(scriptKey)?.turns.length ?? 0;
      throw new ScriptError(`mock script ${scriptKey} has no turn ${turnIndex} (it has ${length}; the conversation already holds ${turnIndex} of its answers)`);
    }
    const where = `mock script ${scriptKey} turn ${turnIndex}`;
    const turn = typeof source === 'function' ? callTurnFunction(source, { scriptKey, turnIndex, body, toolResults: toolResultsOf(request) }, where) : source;
    checkScriptedToolNames(turn, request, where);
    return turn;
  }

  private takeInjectedFailure(scriptKey: string | undefined): FailureSpec | undefined {
    const outage = this.currentOutage;
    if (outage && (outage.untilMs === undefined || Date.now() < outage.untilMs)) return outage.failure;
    const pending = this.failures.find((f) => f.scriptKey === undefined || f.scriptKey === scriptKey);
    if (!pending) return undefined;
    pending.remaining--;
    if (pending.remaining === 0) this.failures = this.failures.filter((f) => f !== pending);
    return pending.failure;
  }

  private async waitBeforeAnswering(scriptKey: string | undefined, latencyMs: number | undefined): Promise<void> {
    const gate = scriptKey === undefined ? undefined : this.gates.get(scriptKey);
    if (gate) await gate.opened;
    if (latencyMs !== undefined && latencyMs > 0 && !this.shutdown.signal.aborted) {
      await sleep(latencyMs, undefined, { signal: this.shutdown.signal }).catch(() => undefined);
    }
  }

  private send(res: ServerResponse, outcome: Outcome, requestId: string): void {
    res.writeHead(outcome.status, { 'content-type': 'application/json', 'request-id': requestId, ...outcome.headers });
    res.end(JSON.stringify(outcome.body));
  }

  private notifyWaiters(): void {
    this.waiters = this.waiters.filter((waiter) => {
      const arrived = this.requests(waiter.scriptKey);
      if (arrived.length < waiter.count) return true;
      waiter.resolve(arrived);
      return false;
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private describeArrivals(): string {
    const counts = new Map<string, number>();
    for (const r of this.records) counts.set(r.scriptKey ?? '(unmatched)', (counts.get(r.scriptKey ?? '(unmatched)') ?? 0) + 1);
    return [...counts].map(([key, n]) => `${key}: ${n}`).join(', ') || 'none';
  }
}
