package lapse

import (
	"errors"
	"fmt"
	"time"
)

// Code is a stable, machine-readable error code. The HTTP API returns it
// verbatim in the "code" member of its problem+json errors, so a code once
// published never changes meaning.
type Code string

// Error codes returned by the engine and its stores.
const (
	CodeSessionNotFound        Code = "session_not_found"
	CodeSessionExpiredIdle     Code = "session_expired_idle"
	CodeSessionExpiredAbsolute Code = "session_expired_absolute"
	CodeSessionRevoked         Code = "session_revoked"
	CodeStepUpRequired         Code = "step_up_required"
	CodeInvalid                Code = "invalid_request"
	CodeUnknownTier            Code = "unknown_tier"
	CodeUnknownTenant          Code = "unknown_tenant"
	CodeConflict               Code = "conflict"
	CodeStoreUnavailable       Code = "store_unavailable"
	CodeInternal               Code = "internal"
	// CodeKeyNotFound: no API key has the id, or it is another tenant's.
	CodeKeyNotFound Code = "key_not_found"
	// CodeOperatorNotFound: no console operator has the id or name.
	CodeOperatorNotFound Code = "operator_not_found"
)

// Error is the error type of lapse. Code says what went wrong for
// programs, Message says it for people (it never holds a token), and Err
// is the underlying cause, if any, for logs.
type Error struct {
	Code    Code
	Message string
	Err     error
	// Requirement is set with CodeStepUpRequired: what the session lacks.
	Requirement *Requirement
	// Reason is set with the codes of an ended session
	// (CodeSessionRevoked, CodeSessionExpiredIdle,
	// CodeSessionExpiredAbsolute): why it ended, as its EndReason says.
	Reason Reason
	// RetryAfter is set with a code answered 429: how long the caller
	// should wait before trying again.
	RetryAfter time.Duration
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return e.Message + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an [*Error] with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first [*Error] in err's chain: "" for
// a nil error and [CodeInternal] for an error that carries no code.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the human-readable message of the first [*Error] in
// err's chain, or a generic text for errors without one, so internal
// causes never leak to clients.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}
