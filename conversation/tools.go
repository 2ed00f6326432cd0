package conversation

import (
	"context"
	"encoding/json"
)

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the call's arguments (an object schema).
	Parameters json.RawMessage
}

// ToolCall is one call the model asked for.
type ToolCall struct {
	// ID is the model's id of the call (call_id), echoed with its result.
	ID   string
	Name string
	// Arguments is the JSON object of arguments, as the model wrote it.
	Arguments string
}

// ToolRound is one round of tool calls within a turn: what the model asked for
// and what the tools answered, in the same order.
type ToolRound struct {
	Calls   []ToolCall
	Results []string
}

// Tools lists the tools the owner configured and runs them. mcp.Servers
// implements it.
type Tools interface {
	// List returns the tools on offer now (servers that fail are left out).
	List(ctx context.Context) ([]Tool, error)
	// Call runs one tool with its JSON arguments and returns its output as text.
	// A tool's own failure is an error whose text the model may see.
	Call(ctx context.Context, name, arguments string) (string, error)
}
