package sqlite

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// Transcript references (migration 0005). A device's request is recorded
// right after the store served it: the Idle's response is the command
// NextCommand returned, byte for byte; an acknowledgement's request is the
// result SaveResult saved. bodyNotes remembers, per enrollment, what the
// store last returned and saved, so that AppendTranscript can record "the
// command C" or "the result R" instead of the bytes a second time — only
// when the bytes are equal, so a reference always reads back as the body
// the entry had.
//
// A reference must never outlive what it names. Commands and final results
// are kept until Reset (see 0004), so only Reset can break one: Reset
// counts itself in gen and forgets every note, and a note is taken only if
// no Reset ran since the store read or wrote what it names; AppendTranscript
// decides and queues its rows under seqMu, which Reset holds throughout,
// so a row either lands before Reset's deletes or was decided after them.
type bodyNotes struct {
	gen atomic.Uint64

	mu   sync.Mutex
	byID map[string]*bodyNote
}

type bodyNote struct {
	commandUUID string
	command     []byte // as queued (never modified)

	resultUUID string
	resultID   int64
	result     []byte // a copy of what was saved
}

// maxNotes bounds the notes kept: one per enrollment with a request in
// flight, normally; past it they are dropped (and bodies recorded whole).
const maxNotes = 4096

func (n *bodyNotes) note(id string, gen uint64, set func(*bodyNote)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gen.Load() != gen {
		return // a Reset ran since: what the note would name may be gone
	}
	if n.byID == nil || len(n.byID) >= maxNotes {
		n.byID = map[string]*bodyNote{}
	}
	b := n.byID[id]
	if b == nil {
		b = &bodyNote{}
		n.byID[id] = b
	}
	set(b)
}

// commandSent notes that id was given command uuid, whose raw is command.
func (n *bodyNotes) commandSent(id, uuid string, command []byte, gen uint64) {
	if len(command) == 0 {
		return
	}
	n.note(id, gen, func(b *bodyNote) { b.commandUUID, b.command = uuid, command })
}

// resultSaved notes that id's final result for uuid is result resultID.
func (n *bodyNotes) resultSaved(id, uuid string, resultID int64, result []byte, gen uint64) {
	if len(result) == 0 {
		return
	}
	result = bytes.Clone(result) // the caller's buffer is the caller's
	n.note(id, gen, func(b *bodyNote) { b.resultUUID, b.resultID, b.result = uuid, resultID, result })
}

// references returns what an entry of enrollment id may refer to instead
// of carrying its bodies: the command its response is ("" if none) and the
// result its request is (0 if none). The note is consumed: the entry is
// the record of the request that left it.
func (n *bodyNotes) references(id, commandUUID string, request, response []byte) (responseCommand string, requestResult int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.byID[id]
	if b == nil {
		return "", 0
	}
	delete(n.byID, id)
	if len(response) > 0 && bytes.Equal(response, b.command) {
		responseCommand = b.commandUUID
	}
	if commandUUID != "" && commandUUID == b.resultUUID && len(request) > 0 && bytes.Equal(request, b.result) {
		requestResult = b.resultID
	}
	return responseCommand, requestResult
}

// reset forgets every note, and makes any note taken before it void. The
// caller holds seqMu and runs Reset's deletes after it.
func (n *bodyNotes) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen.Add(1)
	n.byID = nil
}
