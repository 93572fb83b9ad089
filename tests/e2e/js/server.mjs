// TypeScript-SDK (@modelcontextprotocol/sdk 1.x) MCP server for the mcpgate e2e tests.
// Streamable HTTP, stateful (one transport per Mcp-Session-Id), SSE responses, an event store for resumption.
// Usage: node server.mjs <port>      (binds 127.0.0.1, serves /mcp)
import { randomUUID } from 'node:crypto';
import * as z from 'zod/v4';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';

const port = parseInt(process.argv[2] ?? '3000', 10);
const ORDERS = { 'o-1': { status: 'shipped', total: 42.5 }, 'o-2': { status: 'refunded', total: 10 } };

function buildServer() {
  const server = new McpServer({ name: 'orders-ts', version: '1.0.0' });

  server.registerTool('lookup_order', {
    description: 'Look up an order by id',
    inputSchema: { order_id: z.string() },
  }, async ({ order_id }) => {
    const order = ORDERS[order_id];
    if (!order) return { content: [{ type: 'text', text: `unknown order ${order_id}` }], isError: true };
    return { content: [{ type: 'text', text: JSON.stringify({ order_id, ...order }) }] };
  });

  server.registerTool('count_down', {
    description: 'Count down, sending a progress notification per step',
    inputSchema: { steps: z.number().int().min(1).max(20) },
  }, async ({ steps }, extra) => {
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (token !== undefined) {
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: i, total: steps, message: `step ${i}/${steps}` },
        });
      }
    }
    return { content: [{ type: 'text', text: `counted down ${steps}` }] };
  });

  server.registerTool('confirm_action', {
    description: 'Ask the user to confirm an action (form elicitation)',
    inputSchema: { action: z.string() },
  }, async ({ action }, extra) => {
    const result = await server.server.elicitInput({
      mode: 'form',
      message: `Confirm: ${action}?`,
      requestedSchema: {
        type: 'object',
        properties: { answer: { type: 'string', title: 'Answer' }, confirmed: { type: 'boolean', title: 'Confirm' } },
        required: ['answer'],
      },
    }, { relatedRequestId: extra.requestId });
    const text = result.action === 'accept'
      ? `user answered ${JSON.stringify(result.content?.answer)} (confirmed=${result.content?.confirmed})`
      : `user ${result.action}`;
    return { content: [{ type: 'text', text }] };
  });
  return server;
}

const app = createMcpExpressApp({ host: '127.0.0.1' });
const transports = new Map();

app.post('/mcp', async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  try {
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (sid) {
        res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
        return;
      }
      if (!isInitializeRequest(req.body)) {
        res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null });
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new InMemoryEventStore(),
        onsessioninitialized: (id) => { transports.set(id, transport); },
      });
      transport.onclose = () => { if (transport.sessionId) transports.delete(transport.sessionId); };
      await buildServer().connect(transport);
    }
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    console.error('error handling POST /mcp', err);
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }
});

const bySession = async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  const transport = sid ? transports.get(sid) : undefined;
  if (!transport) {
    res.status(sid ? 404 : 400).send(sid ? 'Session not found' : 'Missing Mcp-Session-Id');
    return;
  }
  await transport.handleRequest(req, res);
};
app.get('/mcp', bySession);
app.delete('/mcp', bySession);

const httpServer = app.listen(port, '127.0.0.1', () => {
  console.error(`ts server: http://127.0.0.1:${port}/mcp`);
});
const stop = () => {
  for (const t of transports.values()) t.close().catch(() => {});
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
