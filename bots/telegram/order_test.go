package telegram

import "testing"

func TestChatOrder(t *testing.T) {
	o := newChatOrder()
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	a := o.join("c")
	if a.wait != nil {
		t.Fatal("the first message of a chat waited")
	}
	b := o.join("c")
	c := o.join("c")
	if other := o.join("other"); other.wait != nil {
		t.Error("another chat's message waited")
	}
	if closed(b.wait) || closed(c.wait) {
		t.Fatal("a message went before the previous one was in the engine")
	}
	a.entering()
	if closed(b.wait) {
		t.Error("the second message must wait until the first has started, not only entered")
	}
	a.started()
	if !closed(b.wait) || closed(c.wait) {
		t.Error("the second message goes once the first has started; the third waits for the second")
	}
	b.entering()
	if !closed(c.wait) {
		t.Error("behind a waiting message, the next goes once it is handed over")
	}
	a.done()
	b.done()
	c.done()
	if len(o.chats) != 1 {
		t.Errorf("%d chats kept, want only the other chat", len(o.chats))
	}
}
