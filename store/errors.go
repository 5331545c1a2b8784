package store

import (
	"net/http"

	"github.com/mockmdm/mockmdm/internal/httperr"
)

// The errors every backend returns, in one place so that both say the same
// thing and carry the same status. Not-found errors wrap ErrNotFound.

// EnrollmentNotFound is the error for an unknown enrollment ID.
func EnrollmentNotFound(id string) error {
	return httperr.Wrap(http.StatusNotFound, ErrNotFound, "enrollment %q", id)
}

// CertNotFound is the error for a certificate hash bound to no enrollment.
func CertNotFound(hash string) error {
	return httperr.Wrap(http.StatusNotFound, ErrNotFound, "no enrollment bound to certificate %s", hash)
}

// UnknownEnrollment is the error for enqueueing to an enrollment that does not exist.
func UnknownEnrollment(id string) error {
	return httperr.Wrap(http.StatusNotFound, ErrNotFound, "cannot enqueue for enrollment %q: no such enrollment", id)
}

// DuplicateCommand is the error for enqueueing a CommandUUID already used.
func DuplicateCommand(uuid string) error {
	return httperr.New(http.StatusConflict, "command UUID %s is already used; every command needs a new UUID", uuid)
}

// NotQueued is the error for a result to a command not queued for id.
func NotQueued(id, uuid string) error {
	return httperr.Wrap(http.StatusNotFound, ErrNotFound, "command %s is not queued for %s", uuid, id)
}

// ValidateEnqueue checks the arguments of Queue.Enqueue.
func ValidateEnqueue(cmd *Command, ids []string) error {
	switch {
	case cmd == nil:
		return httperr.New(http.StatusBadRequest, "no command to enqueue")
	case cmd.UUID == "":
		return httperr.New(http.StatusBadRequest, "the command has no CommandUUID")
	case len(ids) == 0:
		return httperr.New(http.StatusBadRequest, "command %s names no enrollment to send it to", cmd.UUID)
	}
	return nil
}

// ValidateResultStatus checks the status given to Queue.SaveResult.
func ValidateResultStatus(status string) error {
	switch status {
	case CommandNotNow, CommandAcknowledged, CommandError, CommandCommandFormatError:
		return nil
	}
	return httperr.New(http.StatusBadRequest, "result status %q is not one of NotNow, Acknowledged, Error, CommandFormatError", status)
}

// DocumentNotFound is the error for a missing document.
func DocumentNotFound(kind, id string) error {
	return httperr.Wrap(http.StatusNotFound, ErrNotFound, "no %s %q", kind, id)
}
