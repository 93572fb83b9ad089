"""The bundled example MCP server: a small payments/support backend on the official Python SDK (`mcp` 2.x).

Run: `python -m examples.server --port 8000 [--transport streamable-http|sse] [--json-response]
[--stateless]`.
It always binds 127.0.0.1 and serves `/mcp` (Streamable HTTP) or `/sse` + `/messages/` (legacy HTTP+SSE).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve, Sample
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.prompts.base import AssistantMessage, Message, UserMessage
from mcp_types import CreateMessageResult, SamplingMessage, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from examples.event_store import InMemoryEventStore

HOST = "127.0.0.1"
REFUND_LIMIT = 500.0

log = logging.getLogger("examples.server")


@dataclass
class Customer:
    id: str
    name: str
    email: str
    account: str
    balance: float
    tier: str


def _seed() -> dict[str, Customer]:
    rows = [
        Customer("c-1001", "Ada Lovelace", "ada@example.com", "ACC-1001", 1250.00, "gold"),
        Customer("c-1002", "Grace Hopper", "grace@example.com", "ACC-1002", 310.50, "silver"),
        Customer("c-1003", "Alan Turing", "alan@example.com", "ACC-1003", 42.00, "basic"),
        Customer("c-1004", "Katherine Johnson", "katherine@example.com", "ACC-1004", 9800.75, "gold"),
    ]
    return {c.id: c for c in rows}


POLICY_DOC = """# Refund and support policy (example)

- Refunds up to 500.00 per request may be issued by support agents; larger refunds need a supervisor.
- Every refund needs a reason that will be shown to the customer.
- Customer records may only be deleted on a verified erasure request.
- Never read out full card numbers; the last four digits are enough.
"""


class Confirmation(BaseModel):
    """What `ask_user` asks the person at the client."""

    answer: str = Field(description="your answer")
    confirmed: bool = Field(default=True, description="tick to confirm")


# Resolvers live at module level: the SDK evaluates the tools' string annotations in module globals.
def _ask(question: str) -> Elicit[Confirmation]:
    return Elicit(question, Confirmation)


def _sample(text: str) -> Sample:
    return Sample(
        [SamplingMessage(role="user", content=TextContent(type="text", text=f"Summarize briefly:\n{text}"))],
        max_tokens=200,
        system_prompt="You summarize customer-support tickets in one sentence.",
    )


def build_server() -> MCPServer:
    """Build a fresh server with its own in-memory data (one per process, or per test)."""
    customers = _seed()
    reports: deque[dict[str, Any]] = deque(maxlen=20)
    mcp = MCPServer(
        "payments-support",
        version="1.0.0",
        instructions="Payments and customer-support tools for a fictional bank (example data only).",
    )

    def by_account(account: str) -> Customer:
        for c in customers.values():
            if c.account == account:
                return c
        raise ToolError(f"unknown account `{account}`")

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    def get_balance(account: str) -> dict[str, Any]:
        """Current balance of an account, e.g. `ACC-1001`."""
        c = by_account(account)
        return {"account": c.account, "balance": round(c.balance, 2), "currency": "EUR"}

    @mcp.tool()
    def refund(account: str, amount: float, reason: str) -> dict[str, Any]:
        """Refund `amount` EUR to an account. Refunds above 500.00 are refused (supervisor needed)."""
        c = by_account(account)
        if amount <= 0:
            raise ToolError("refund amount must be positive")
        if amount > REFUND_LIMIT:
            raise ToolError(f"refund of {amount:.2f} exceeds the {REFUND_LIMIT:.2f} limit; ask a supervisor")
        c.balance += amount
        return {"account": c.account, "refunded": round(amount, 2), "reason": reason,
                "new_balance": round(c.balance, 2)}

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    def search_customers(query: str) -> list[dict[str, str]]:
        """Find customers whose name or email contains `query` (case-insensitive)."""
        q = query.lower()
        return [{"id": c.id, "name": c.name, "email": c.email, "tier": c.tier}
                for c in customers.values() if q in c.name.lower() or q in c.email.lower()]

    @mcp.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
    def delete_customer(id: str) -> str:
        """Permanently delete a customer record (erasure request)."""
        if customers.pop(id, None) is None:
            raise ToolError(f"unknown customer `{id}`")
        return f"deleted customer {id}"

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def slow_report(seconds: float, ctx: Context, checkpoint: bool = False) -> str:
        """Build the daily settlement report, reporting progress; takes about `seconds` seconds.

        With `checkpoint`, the server releases the HTTP stream half way (SSE polling) and the client resumes
        it with `Last-Event-ID`; a no-op where the transport cannot resume.
        """
        steps = 5
        run = {"id": len(reports) + 1, "seconds": seconds, "status": "running", "progress": 0}
        reports.append(run)
        try:
            for step in range(1, steps + 1):
                await anyio.sleep(seconds / steps)
                run["progress"] = step
                await ctx.report_progress(step, steps, f"step {step}/{steps}")
                if checkpoint and step == 2:
                    await ctx.close_sse_stream()
        except anyio.get_cancelled_exc_class():
            run["status"] = "cancelled"
            log.info("slow_report %s cancelled at step %s", run["id"], run["progress"])
            raise
        run["status"] = "completed"
        return f"settlement report ready: {steps} sections, {len(customers)} customers"

    @mcp.tool()
    def ask_user(
        question: str,
        reply: Annotated[ElicitationResult[Confirmation], Resolve(_ask)],
    ) -> str:
        """Ask the person at the client a question (elicitation) and return what they said."""
        if reply.action != "accept":
            return f"user {reply.action}d the question"
        return f"user answered {reply.data.answer!r} (confirmed={reply.data.confirmed})"

    @mcp.tool()
    def summarize(text: str, summary: Annotated[CreateMessageResult, Resolve(_sample)]) -> str:
        """Summarize a support ticket with the client's own model (sampling)."""
        content = summary.content
        said = content.text if isinstance(content, TextContent) else str(content)
        return f"summary ({summary.model}): {said}"

    @mcp.resource("customers://{id}", mime_type="application/json")
    def customer(id: str) -> dict[str, Any]:
        """A customer record by id, e.g. `customers://c-1001`."""
        c = customers.get(id)
        if c is None:
            raise ResourceNotFoundError(f"unknown customer `{id}`")
        return {"id": c.id, "name": c.name, "email": c.email, "account": c.account, "tier": c.tier}

    @mcp.resource("docs://policy", mime_type="text/markdown")
    def policy() -> str:
        """The refund and support policy agents must follow."""
        return POLICY_DOC

    @mcp.resource("reports://recent", mime_type="application/json")
    def recent_reports() -> list[dict[str, Any]]:
        """The most recent `slow_report` runs with their status (running, completed, cancelled)."""
        return list(reports)

    @mcp.prompt()
    def support_reply(customer_name: str, issue: str, tone: str = "friendly") -> list[Message]:
        """Draft a reply to a customer's support ticket."""
        return [
            UserMessage(f"Write a {tone} reply to {customer_name} about: {issue}. Follow docs://policy."),
            AssistantMessage(f"Dear {customer_name}, thank you for reaching out."),
        ]

    return mcp


Transport = Literal["streamable-http", "sse"]


def make_app(transport: Transport = "streamable-http", *, json_response: bool = False,
             stateless: bool = False, retry_ms: int = 500) -> Any:
    """The ASGI app for one transport mode; stateful SSE-response mode keeps an event store for resumption."""
    mcp = build_server()
    if transport == "sse":
        return mcp.sse_app(host=HOST)
    resumable = not stateless and not json_response
    return mcp.streamable_http_app(
        json_response=json_response,
        stateless_http=stateless,
        event_store=InMemoryEventStore() if resumable else None,
        retry_interval=retry_ms if resumable else None,
        host=HOST,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--json-response", action="store_true", help="answer POSTs with JSON, not SSE")
    parser.add_argument("--stateless", action="store_true",
                        help="no Mcp-Session-Id; fresh transport per POST")
    parser.add_argument("--retry-ms", type=int, default=500, help="SSE `retry` hint when resumption is on")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    import uvicorn

    app = make_app(args.transport, json_response=args.json_response, stateless=args.stateless,
                   retry_ms=args.retry_ms)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = "/sse" if args.transport == "sse" else "/mcp"
    print(f"example server: http://{HOST}:{args.port}{path} ({args.transport}"
          f"{', json' if args.json_response else ''}{', stateless' if args.stateless else ''})",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=HOST, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
