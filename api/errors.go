package api

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors shared by the server, the client and the CLI. They cross
// the wire as an error code (see Code) and are rebuilt on the client side.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict: the object has been modified; read it again and retry")
	ErrInvalid       = errors.New("invalid")
	ErrUnknownKind   = errors.New("unknown kind")
)

// Code names a sentinel error on the wire.
func Code(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "NotFound"
	case errors.Is(err, ErrAlreadyExists):
		return "AlreadyExists"
	case errors.Is(err, ErrConflict):
		return "Conflict"
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnknownKind):
		return "Invalid"
	case err == nil:
		return ""
	}
	return "Internal"
}

// ErrorFromCode rebuilds an error carrying the sentinel named by code.
func ErrorFromCode(code, msg string) error {
	var base error
	switch code {
	case "NotFound":
		base = ErrNotFound
	case "AlreadyExists":
		base = ErrAlreadyExists
	case "Conflict":
		base = ErrConflict
	case "Invalid":
		base = ErrInvalid
	default:
		return errors.New(msg)
	}
	return &codedError{base: base, msg: msg}
}

type codedError struct {
	base error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.base }

// FieldError is one invalid field.
type FieldError struct {
	Field  string // e.g. spec.template.spec.containers[0].image
	Detail string
}

// FieldErrors is a validation failure naming every bad field.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Field + ": " + e.Detail
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.Is(err, ErrInvalid) hold.
func (fe FieldErrors) Unwrap() error { return ErrInvalid }

func (fe *FieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (fe FieldErrors) orNil() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}
