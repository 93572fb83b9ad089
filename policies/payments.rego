# The Rego equivalent of payments.yaml, for `policy.backend: opa` (see docs/policy.md, "OPA backend").
# mcpgate queries `data.mcpgate.authz` and reads `allow`, `rule_ids`, `would_deny_rule_ids`, `hidden`.
package mcpgate.authz

import rego.v1

default allow := false

p := input.principal

op := input.operation

is_billing if p.id == "spiffe://cluster.local/ns/payments/sa/billing"

is_support if p.namespace == "support"

is_support if {
	p.claims.iss == "https://auth.example.com"
	p.claims.team == "support"
	"payments.read" in p.scopes
}

# `*` in mcpgate globs does not cross `/`: the same delimiter here.
tool(pattern) if {
	op.method == "tools/call"
	glob.match(pattern, ["/"], input.target)
}

allow_rules contains "billing-refunds" if {
	is_billing
	tool("refund")
	is_number(input.arguments.amount)
	input.arguments.amount > 0
	input.arguments.amount <= 100
}

allow_rules contains "billing-reads" if {
	is_billing
	some pattern in ["get_*", "list_*"]
	tool(pattern)
}

allow_rules contains "support-read-only" if {
	is_support
	some pattern in ["get_*", "list_*", "search_*"]
	tool(pattern)
}

allow_rules contains "support-read-only" if {
	is_support
	op.method in {"prompts/get", "completion/complete"}
	glob.match("explain_*", ["/"], input.target)
}

allow_rules contains "support-read-only" if {
	is_support
	op.method in {"resources/read", "resources/subscribe", "resources/unsubscribe", "completion/complete"}
	regex.match(`^ledger://accounts/[^/]+(/transactions)?$`, input.target)
}

allow_rules contains "billing-may-sample" if {
	is_billing
	op.method == "sampling/createMessage"
}

deny_rules contains "no-destructive" if tool("delete_*")

audit_deny_rules contains "no-eur-refunds" if {
	tool("refund")
	input.arguments.currency == "EUR"
}

allow if {
	count(deny_rules) == 0
	count(allow_rules) > 0
}

rule_ids := sort(deny_rules) if {
	count(deny_rules) > 0
} else := sort(allow_rules) if {
	count(allow_rules) > 0
} else := ["default"]

would_deny_rule_ids := sort(audit_deny_rules)

# Callers that may not use a tool, prompt or resource for any arguments are told it does not exist.
hidden if {
	not allow
	op.method in {"tools/call", "prompts/get", "resources/read"}
	not visible
}

visible if {
	count(deny_rules) == 0
	count(allowed_for_some_arguments) > 0
}

allowed_for_some_arguments contains "billing-refunds" if {
	is_billing
	tool("refund")
}

allowed_for_some_arguments contains r if {
	some r in allow_rules
}

# List filtering: once per list answer (a page), mcpgate sends the list request's input plus
# `input.list = {kind, method, names}` and keeps the entries whose name is in `visible_names`, in the
# server's order. A missing `visible_names` withholds the whole list (rule `opa:error`, fail closed).
# Each name is judged as a call to it with unknown arguments would be (`visible` above).
visible_names contains name if {
	input.list.kind != "resource_template"
	some name in input.list.names
	visible with input.operation.method as input.list.method
		with input.operation.target as name
		with input.target as name
		with input.arguments as null
}

# A URI template is shown to callers who may read some resource it can expand to.
visible_names contains name if {
	input.list.kind == "resource_template"
	is_support
	count(deny_rules) == 0
	some name in input.list.names
	startswith(name, "ledger://accounts/")
}
