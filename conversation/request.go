package conversation

import "time"

// Request is one incoming message, already checked by the adapter for access and
// trigger (mention, reply, DM) and stripped of the bot's mention.
type Request struct {
	Chat ChatID
	// UserID identifies the sender on the platform (for usage accounting and logs).
	UserID string
	// UserName is the speaker's display name, given to the model in group chats.
	// Leave it empty in private chats.
	UserName string
	// Text is the message (or a file's caption). A leading "/command" (without
	// "@bot") is a command.
	Text string
	// Files are what came with the message, made with NewAttachment: images,
	// PDFs, text files, voice and audio.
	Files []Attachment
	// Private marks a one-to-one conversation (a private chat, a DM, the web chat,
	// the terminal); tools are offered only there unless Config.ToolsInGroups.
	Private bool
	// Reply receives the answer.
	Reply Reply
	// UpdateEvery is the least time between two Reply.Update calls (the platform's
	// safe edit pace for this chat). Zero means one second.
	UpdateEvery time.Duration
}
