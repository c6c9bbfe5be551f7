package hostcall

import (
	"context"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/flotilla-edge/flotilla/wasmrt/hostcall/abi"
)

// natsPublish implements nats_publish(subject_ptr, subject_len, data_ptr, data_len) -> i32.
func (h *Host) natsPublish(ctx context.Context, mod api.Module, stack []uint64) {
	sp, sn := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	dp, dn := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	if err := h.publish(ctx, mod, sp, sn, dp, dn); err != nil {
		stack[0] = api.EncodeI32(int32(h.codeOf(ctx, abi.FuncNATSPublish, err)))
		return
	}
	stack[0] = 0
}

func (h *Host) publish(ctx context.Context, mod api.Module, sp, sn, dp, dn uint32) error {
	if h.cfg.Publish == nil {
		return fail(abi.ErrNotConfigured, "no NATS connection for pods")
	}
	if sn > 1024 {
		return fail(abi.ErrSubject, "subject of %d bytes", sn)
	}
	if uint64(dn) > uint64(h.cfg.MaxRequestBytes) {
		return fail(abi.ErrTooLarge, "message of %d bytes, limit %d", dn, h.cfg.MaxRequestBytes)
	}
	sb, err := read(mod, sp, sn)
	if err != nil {
		return err
	}
	data, err := read(mod, dp, dn)
	if err != nil {
		return err
	}
	c, _ := CallerFrom(ctx)
	subject := string(sb)
	if err := checkSubject(c.Namespace, subject); err != nil {
		return err
	}
	if err := h.cfg.Publish(subject, data); err != nil {
		return fail(abi.ErrPublish, "publish %s: %w", subject, err)
	}
	return nil
}

// checkSubject keeps a pod inside flotilla.apps.<its namespace>.>: no
// wildcards (publishing to them is meaningless and some servers reject
// it), no empty tokens, no whitespace.
func checkSubject(ns, subject string) error {
	if ns == "" {
		return fail(abi.ErrSubject, "caller has no namespace")
	}
	prefix := abi.SubjectPrefix(ns)
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok || rest == "" {
		return fail(abi.ErrSubject, "%q is outside %s>", subject, prefix)
	}
	for _, tok := range strings.Split(rest, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fail(abi.ErrSubject, "%q has a bad token %q", subject, tok)
		}
	}
	return nil
}
