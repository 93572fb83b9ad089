// TypeScript-SDK (@modelcontextprotocol/sdk 1.x) MCP client for the mcpgate e2e tests.
// Usage: node client.mjs <url> <scenario>  — runs the scenario and prints ONE JSON object on stdout.
// Scenarios: "python" (against examples.server), "ts" (against server.mjs), "sse" (legacy HTTP+SSE, python server).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const [url, scenario = 'python'] = process.argv.slice(2);

const client = new Client(
  { name: 'mcpgate-e2e-ts-client', version: '1.0.0' },
  { capabilities: { elicitation: { form: {} }, sampling: {} } },
);
client.setRequestHandler(ElicitRequestSchema, async () => ({
  action: 'accept',
  content: { answer: 'yes', confirmed: true },
}));
client.setRequestHandler(CreateMessageRequestSchema, async () => ({
  role: 'assistant',
  content: { type: 'text', text: 'customer wants a refund' },
  model: 'fake-model',
}));

const out = { steps: {} };
const step = async (name, fn) => {
  try {
    out.steps[name] = await fn();
  } catch (err) {
    out.steps[name] = { error: String(err?.message ?? err), code: err?.code ?? null };
  }
};
const texts = (r) => ({ isError: r.isError ?? false, text: r.content.map((c) => c.text) });

async function progressCall(name, args) {
  const progress = [];
  const r = await client.callTool({ name, arguments: args }, undefined, {
    onprogress: (p) => progress.push([p.progress, p.total, p.message]),
  });
  return { ...texts(r), progress };
}

async function main() {
  const transport = scenario === 'sse'
    ? new SSEClientTransport(new URL(url))
    : new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  out.protocolVersion = transport.protocolVersion ?? null;
  out.hasSession = scenario === 'sse' ? null : Boolean(transport.sessionId);
  await step('tools', async () => (await client.listTools()).tools.map((t) => t.name).sort());
  if (scenario === 'ts') {
    await step('call', async () => texts(await client.callTool({ name: 'lookup_order', arguments: { order_id: 'o-1' } })));
    await step('progress', () => progressCall('count_down', { steps: 3 }));
    await step('elicit', async () => texts(await client.callTool({ name: 'confirm_action', arguments: { action: 'x' } })));
  } else {
    await step('call', async () => texts(await client.callTool({ name: 'get_balance', arguments: { account: 'ACC-1001' } })));
    await step('tool_error', async () => texts(await client.callTool({ name: 'refund', arguments: { account: 'ACC-1001', amount: 9999, reason: 'x' } })));
    await step('progress', () => progressCall('slow_report', { seconds: 0.25 }));
    await step('elicit', async () => texts(await client.callTool({ name: 'ask_user', arguments: { question: 'ok?' } })));
    await step('sample', async () => texts(await client.callTool({ name: 'summarize', arguments: { text: 'refund please' } })));
    await step('resource', async () => (await client.readResource({ uri: 'customers://c-1002' })).contents.map((c) => JSON.parse(c.text)));
    await step('prompt', async () => (await client.getPrompt({ name: 'support_reply', arguments: { customer_name: 'Ada', issue: 'card' } })).messages.map((m) => [m.role, m.content.text]));
    await step('unknown_tool', async () => texts(await client.callTool({ name: 'no_such_tool', arguments: {} })));
  }
  if (scenario !== 'sse') {
    await step('terminate', async () => { await transport.terminateSession(); return { sessionAfter: transport.sessionId ?? null }; });
  }
  await client.close();
}

const timer = setTimeout(() => { out.fatal = 'timeout after 30s'; console.log(JSON.stringify(out)); process.exit(2); }, 30000);
main().then(() => {
  clearTimeout(timer);
  console.log(JSON.stringify(out));
  process.exit(0);
}).catch((err) => {
  clearTimeout(timer);
  out.fatal = String(err?.message ?? err);
  console.log(JSON.stringify(out));
  process.exit(1);
});
