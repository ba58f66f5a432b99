/** `--help` of the plugin and of each command. */
import type { CommandName } from './args.ts';

const GLOBAL_FLAGS = `Global flags (accepted anywhere, as kubectl's):
      --kubeconfig PATH      kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
      --context NAME         kubeconfig context (default: the current context)
  -n, --namespace NS         namespace (default: the context's namespace, else "default")
  -h, --help                 help`;

/** The plugin's --help text: commands and global flags. */
export const PLUGIN_HELP = `kubectl agentrun: inspect AgentRuns and decide on their pending tool calls.

Usage:
  kubectl agentrun COMMAND [ARGS] [flags]

Commands:
  list                       list runs: phase, step in flight, turn, tokens, what each waits for
  describe NAME              a run's summary, its steps, pending approvals and recent events
  approve NAME [STEP...]     approve pending tool calls (all of them when no STEP is given)
  reject NAME STEP --reason  reject a pending tool call
  transcript NAME            the conversation, rebuilt from the run's journal
  logs NAME STEP             the log of a tool step's pod (the journaled output if the pod is gone)
  ui                         a local web console: live runs, run pages, an approvals inbox, as you
  version                    this plugin's version, commit and Node.js

${GLOBAL_FLAGS}

Run "kubectl agentrun COMMAND --help" for a command's flags.
Exit status: 0 on success, 1 on any error (the reason is printed on stderr).
`;

/** Each command's --help text: usage, flags and examples. */
export const COMMAND_HELP: Record<CommandName, string> = {
  list: `List AgentRuns, like "kubectl get agentruns".

Usage:
  kubectl agentrun list [-n NS | -A]

Columns: NAME, PHASE, STEP (in flight), TURN, TOKENS (all four kinds), WAITING-FOR, AGE;
with -A a NAMESPACE column first.

Flags:
  -A, --all-namespaces       list runs in every namespace

${GLOBAL_FLAGS}
`,
  describe: `Show one AgentRun: phase and message, model, token usage (including prompt cache reads and
writes), times, conditions, a table of its steps (kind, tool, phase/outcome, attempt, pod,
tokens, duration, approval decision and who made it, retry and approval waits), the pending
approvals with the exact commands to approve or reject them, and the run's recent Events.
A pending input longer than its preview is marked; --show-input prints it whole, read from the
journal and checked against the digest the operator recorded.

Usage:
  kubectl agentrun describe NAME [-n NS] [--show-input]

Flags:
      --show-input           print the whole input of every pending tool call

${GLOBAL_FLAGS}
`,
  approve: `Approve tool calls that wait for a human decision.

Shows what is pending (step, tool, input preview, since when) and asks for confirmation on the
terminal (y/N). Without STEP every pending step is approved. The decision is the annotation
approve.agentrun.dev/step-N, set with a merge patch as YOU (the kubeconfig's user): the
apiserver's admission policy checks that you may "approve" agentruns/approval and records you in
decided-by.agentrun.dev/step-N. A step that is not pending is refused. Without a terminal the
command refuses unless --yes is given. When a preview does not show the whole input, the whole
input is printed before the question: you approve what you have seen.

Usage:
  kubectl agentrun approve NAME [STEP...] [--comment TEXT] [--yes] [--show-input]

Flags:
      --comment TEXT         the annotation's value, kept in the step's record (default "approved via kubectl agentrun")
  -y, --yes                  do not ask for confirmation
      --show-input           print the whole input of each step first, even when the preview shows it all

${GLOBAL_FLAGS}
`,
  reject: `Reject a tool call that waits for a human decision.

Sets reject.agentrun.dev/step-N to the reason, as YOU (see approve). What a rejection does is the
run's spec.approvals.onReject: Continue (the model gets an error tool_result with your reason)
or Fail (the run fails). A step that is not pending is refused.

Usage:
  kubectl agentrun reject NAME STEP... --reason TEXT

Flags:
      --reason TEXT          why (required); the model may read it

${GLOBAL_FLAGS}
`,
  transcript: `Print a run's conversation, rebuilt from its journal (each step's AgentRunJournal,
status.steps[].journal.name, verified as the operator verifies it: owned by the run, for that
step, matching the sha256 digest in status; an entry that fails is not shown, a warning on
stderr says why): the system prompt and task, then per turn the assistant's
text and tool calls (name and input), the tool results (errors and truncation marked), and the
final result. Steps still in flight are shown as such.

Usage:
  kubectl agentrun transcript NAME [-o text|json]

Flags:
  -o, --output FORMAT        text (default; wrapped, colour only on a terminal) or json:
                             {"run": {...}, "steps": [journal entries], "messages": [the Messages API
                             conversation, as the operator sends it on its next model call]}

${GLOBAL_FLAGS}
`,
  logs: `Print the log of a tool step's pod (<run>-s<step>-a<attempt>; the attempt from status unless
--attempt says otherwise), through the apiserver's pod log API. When the pod is gone, prints the
step's journaled output instead (what the model got, capped at limits.maxToolOutputBytes) and
says so on stderr.

Usage:
  kubectl agentrun logs NAME STEP [--attempt N]

Flags:
      --attempt N            the attempt whose pod to read (default: the step's current attempt)

${GLOBAL_FLAGS}
`,
  ui: `Start a local web console on 127.0.0.1: the runs you may list (live), each run's timeline,
transcript, Events and tool steps, and an inbox of the steps awaiting approval, with Approve and
Reject. Every request it makes is yours (this kubeconfig's user): RBAC and the approval admission
policies decide, and the apiserver records who approved. It prints a URL with a one-session token
(and opens the browser on it unless --no-open); Ctrl-C stops it.

Usage:
  kubectl agentrun ui [--port N] [--no-open]

Flags:
      --port N               the local port (default: a free one)
      --no-open              print the URL only; do not open a browser

${GLOBAL_FLAGS}
`,
  version: `Print this plugin's version, the commit it was built from and the Node.js it runs on
(in the single executable, Node.js is inside it).

Usage:
  kubectl agentrun version

${GLOBAL_FLAGS}
`,
};
