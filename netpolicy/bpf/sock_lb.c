// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
//
// Flotilla socket-level service load balancer.
//
// Cgroup sock_addr hooks translate a service VIP:port to a backend at the
// moment the application calls connect() (TCP and connected UDP) or
// sendmsg() (unconnected UDP), so no packet ever carries the VIP and no
// per-packet NAT is needed. recvmsg and getpeername translate the backend
// address back to the VIP so the application only ever sees the VIP.
//
// Services are IPv4. The *4 hooks serve AF_INET sockets; the *6 hooks serve
// AF_INET6 (dual-stack) sockets addressing the IPv4-mapped ::ffff:VIP, which
// they handle exactly like the *4 hooks handle VIP (same maps, backends,
// affinity, reverse map and policy; the backend is written back as
// ::ffff:backend). Native IPv6 destinations are never translated; an
// egress-isolated cgroup may not reach them (its rules list IPv4 endpoints
// only). Unconnected UDP sendmsg() to ::ffff:VIP on an AF_INET6 socket is
// handed to the IPv4 stack before the UDP6 hook runs, so sendmsg4 balances
// it and recvmsg6 maps the reply back to ::ffff:VIP.
//
// Only uapi headers are used (no vmlinux.h, no CO-RE) so the object loads on
// kernels without BTF (e.g. Raspberry Pi builds).
//
// Consistent updates without half-written state (double buffering):
//   Every service owns two slot ranges in the `backends` map: generation 0
//   uses slots [0, 65535], generation 1 uses [65536, 131071]. The `services`
//   value holds the active generation (flags bit 0) and the backend count.
//   The control plane writes a new backend list into the *inactive* range,
//   then flips the service entry with one map update (atomic for readers:
//   a hash map update replaces the whole element), and only then deletes the
//   slots of the old range. A program therefore always reads a complete
//   list: the old one or the new one. A program that read the service entry
//   just before the flip and looks up a slot just after the old range was
//   deleted misses; it then re-reads the service entry once (see pick()).
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SLOTS_PER_GEN 65536
#define FLAG_GEN 1u

struct svc_key {
	__be32 vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct svc_val {
	__u32 id;
	__u32 count;            /* backends in the active generation */
	__u32 affinity_timeout; /* seconds; 0 = no ClientIP affinity */
	__u32 flags;            /* bit 0: active generation */
};

struct be_key {
	__u32 svc_id;
	__u32 slot; /* generation * SLOTS_PER_GEN + index */
};

struct be_val {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* ClientIP affinity at socket level: the "client" is the network namespace
 * of the connecting socket (a pod's netns has exactly the pod IP; the host
 * netns is the node IP), identified by its netns cookie. */
struct aff_key {
	__u64 netns_cookie;
	__u32 svc_id;
	__u32 pad;
};

struct aff_val {
	__be32 addr;
	__be16 port;
	__u16 pad;
	__u64 last_used_ns;
};

/* Reverse translation for recvmsg and getpeername: which VIP a socket meant
 * when it was sent to a given backend (IPv4; the v6 hooks use the address
 * embedded in ::ffff:a.b.c.d). */
struct rev_key {
	__u64 cookie;
	__be32 addr;
	__be16 port;
	__u16 pad;
};

struct rev_val {
	__be32 vip;
	__be16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct svc_key);
	__type(value, struct svc_val);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct be_key);
	__type(value, struct be_val);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct aff_key);
	__type(value, struct aff_val);
} affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct rev_key);
	__type(value, struct rev_val);
} revnat SEC(".maps");

/* NetworkPolicy at connect time, per client cgroup (a container pod's
 * cgroup v2 directory; bpf_get_current_cgroup_id() is its inode number).
 * The control plane (package policy) folds the client's egress rules and
 * every destination pod's ingress rules into one verdict per destination
 * endpoint, so this only looks up (client cgroup, destination). The check
 * runs after service translation: rules are on backend addresses. */
struct pol_cg_val {
	__u32 flags; /* bit 0: egress isolated (no entry = deny) */
	__u32 pad;
};

#define POL_EGRESS_ISOLATED 1u

struct pol_key {
	__u64 cgroup_id;
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

#define POL_ALLOW 1u
#define POL_DENY 2u

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u64);
	__type(value, struct pol_cg_val);
} pol_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct pol_key);
	__type(value, __u32);
} pol_rules SEC(".maps");

/* policy_allows: 1 = pass, 0 = deny, for an IPv4 destination (the
 * embedded address for ::ffff:a.b.c.d). Cgroups without an entry in
 * pol_cgroups are not policed (one hash probe on the fast path). */
static __always_inline int policy_allows(__be32 addr, __be16 port, __u8 proto)
{
	__u64 cg = bpf_get_current_cgroup_id();
	struct pol_cg_val *cv = bpf_map_lookup_elem(&pol_cgroups, &cg);
	__u32 *verdict;

	if (!cv)
		return 1;
	struct pol_key pk = {
		.cgroup_id = cg,
		.addr = addr,
		.port = port,
		.proto = proto,
	};
	verdict = bpf_map_lookup_elem(&pol_rules, &pk);
	if (verdict)
		return *verdict == POL_ALLOW;
	return !(cv->flags & POL_EGRESS_ISOLATED);
}

/* policy_allows_native6: a native (not IPv4-mapped) IPv6 destination. Rules
 * only list IPv4 endpoints, so an egress-isolated cgroup has none allowed. */
static __always_inline int policy_allows_native6(void)
{
	__u64 cg = bpf_get_current_cgroup_id();
	struct pol_cg_val *cv = bpf_map_lookup_elem(&pol_cgroups, &cg);

	return !cv || !(cv->flags & POL_EGRESS_ISOLATED);
}

static __always_inline struct be_val *lookup_slot(struct svc_val *svc, __u32 idx)
{
	struct be_key bk = {
		.svc_id = svc->id,
		.slot = (svc->flags & FLAG_GEN) * SLOTS_PER_GEN + idx,
	};
	return bpf_map_lookup_elem(&backends, &bk);
}

/* pick returns 1 and fills *out when a backend was chosen, 0 when the
 * address is not a service (leave it alone) and -1 when the service has no
 * backend (reject). */
static __always_inline int pick(struct bpf_sock_addr *ctx, struct svc_key *sk,
				struct be_val *out)
{
	struct svc_val *svc;
	struct be_val *be = 0;
	struct aff_key ak = {};
	struct aff_val *av;
	__u64 now = 0;
	int try;

	svc = bpf_map_lookup_elem(&services, sk);
	if (!svc)
		return 0;
	if (svc->count == 0 || svc->count >= SLOTS_PER_GEN)
		return -1;

	if (svc->affinity_timeout) {
		now = bpf_ktime_get_ns();
		ak.netns_cookie = bpf_get_netns_cookie(ctx);
		ak.svc_id = svc->id;
		av = bpf_map_lookup_elem(&affinity, &ak);
		if (av && now - av->last_used_ns <
				  (__u64)svc->affinity_timeout * 1000000000ull) {
			av->last_used_ns = now;
			out->addr = av->addr;
			out->port = av->port;
			return 1;
		}
	}

	for (try = 0; try < 2; try++) {
		__u32 count = svc->count;

		if (count == 0 || count >= SLOTS_PER_GEN)
			return -1;
		be = lookup_slot(svc, bpf_get_prandom_u32() % count);
		if (be)
			break;
		/* Raced with a generation flip: re-read the service. */
		svc = bpf_map_lookup_elem(&services, sk);
		if (!svc)
			return 0;
	}
	if (!be)
		return -1;

	out->addr = be->addr;
	out->port = be->port;
	if (svc->affinity_timeout) {
		struct aff_val nv = {
			.addr = be->addr,
			.port = be->port,
			.last_used_ns = now,
		};
		bpf_map_update_elem(&affinity, &ak, &nv, BPF_ANY);
	}
	return 1;
}

/* translate's verdicts. */
#define XLATE_DENY 0    /* the syscall fails with EPERM */
#define XLATE_PASS 1    /* leave the destination as it is */
#define XLATE_REWRITE 2 /* write *out back as the destination */

/* translate judges the IPv4 destination vip:port of the socket in ctx (the
 * caller reads it from user_ip4 or from a v4-mapped user_ip6: the verifier
 * rejects user_ip4 in the v6 hooks) and, for a service, picks a backend
 * into *out and records the reverse mapping. */
static __always_inline int translate(struct bpf_sock_addr *ctx, __be32 vip,
				     __be16 port, struct be_val *out)
{
	__u8 proto = (__u8)ctx->protocol;
	struct svc_key sk = {
		.vip = vip,
		.port = port,
		.proto = proto,
	};
	int r;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XLATE_PASS;
	r = pick(ctx, &sk, out);
	if (r == 0) /* not a service: check as dialled */
		return policy_allows(vip, port, proto) ? XLATE_PASS : XLATE_DENY;
	if (r < 0)
		return XLATE_DENY; /* no backend: fail at once, no SYN sent */
	/* Policy judges the backend chosen, as Kubernetes does after DNAT. A
	 * denied connect fails with EPERM and leaves no reverse entry. */
	if (!policy_allows(out->addr, out->port, proto))
		return XLATE_DENY;

	struct rev_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = out->addr,
		.port = out->port,
	};
	struct rev_val rv = {
		.vip = vip,
		.port = port,
	};
	bpf_map_update_elem(&revnat, &rk, &rv, BPF_ANY);
	return XLATE_REWRITE;
}

/* reverse looks up which VIP:port the socket in ctx meant when it talked to
 * backend addr:port; 1 and *out filled when it was a service. */
static __always_inline int reverse(struct bpf_sock_addr *ctx, __be32 addr,
				   __be16 port, struct rev_val *out)
{
	struct rev_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = addr,
		.port = port,
	};
	struct rev_val *rv = bpf_map_lookup_elem(&revnat, &rk);

	if (!rv)
		return 0;
	out->vip = rv->vip;
	out->port = rv->port;
	return 1;
}

static __always_inline int translate4(struct bpf_sock_addr *ctx)
{
	struct be_val be = {};
	int r = translate(ctx, ctx->user_ip4, (__be16)ctx->user_port, &be);

	if (r == XLATE_REWRITE) {
		ctx->user_ip4 = be.addr;
		ctx->user_port = (__u32)be.port;
	}
	return r != XLATE_DENY;
}

static __always_inline void reverse4(struct bpf_sock_addr *ctx)
{
	struct rev_val rv = {};

	if (reverse(ctx, ctx->user_ip4, (__be16)ctx->user_port, &rv)) {
		ctx->user_ip4 = rv.vip;
		ctx->user_port = (__u32)rv.port;
	}
}

/* ::ffff:a.b.c.d, the form of an IPv4 address on an AF_INET6 socket. */
static __always_inline int v4mapped(struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
	       ctx->user_ip6[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int translate6(struct bpf_sock_addr *ctx)
{
	struct be_val be = {};
	int r;

	if (!v4mapped(ctx)) {
		if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
			return 1;
		return policy_allows_native6();
	}
	r = translate(ctx, ctx->user_ip6[3], (__be16)ctx->user_port, &be);
	if (r == XLATE_REWRITE) {
		/* The ::ffff: prefix stays: the backend is v4-mapped too. */
		ctx->user_ip6[3] = be.addr;
		ctx->user_port = (__u32)be.port;
	}
	return r != XLATE_DENY;
}

static __always_inline void reverse6(struct bpf_sock_addr *ctx)
{
	struct rev_val rv = {};

	if (v4mapped(ctx) &&
	    reverse(ctx, ctx->user_ip6[3], (__be16)ctx->user_port, &rv)) {
		ctx->user_ip6[3] = rv.vip;
		ctx->user_port = (__u32)rv.port;
	}
}

SEC("cgroup/connect4")
int flotilla_connect4(struct bpf_sock_addr *ctx)
{
	return translate4(ctx);
}

SEC("cgroup/sendmsg4")
int flotilla_sendmsg4(struct bpf_sock_addr *ctx)
{
	return translate4(ctx);
}

SEC("cgroup/recvmsg4")
int flotilla_recvmsg4(struct bpf_sock_addr *ctx)
{
	reverse4(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int flotilla_getpeername4(struct bpf_sock_addr *ctx)
{
	reverse4(ctx);
	return 1;
}

SEC("cgroup/connect6")
int flotilla_connect6(struct bpf_sock_addr *ctx)
{
	return translate6(ctx);
}

/* The kernel passes unconnected UDP to ::ffff:a.b.c.d to the IPv4 stack
 * (sendmsg4) before this hook, so here the destination is normally native
 * IPv6; the v4-mapped branch of translate6 keeps the hooks symmetric. */
SEC("cgroup/sendmsg6")
int flotilla_sendmsg6(struct bpf_sock_addr *ctx)
{
	return translate6(ctx);
}

SEC("cgroup/recvmsg6")
int flotilla_recvmsg6(struct bpf_sock_addr *ctx)
{
	reverse6(ctx);
	return 1;
}

SEC("cgroup/getpeername6")
int flotilla_getpeername6(struct bpf_sock_addr *ctx)
{
	reverse6(ctx);
	return 1;
}

char __license[] SEC("license") = "Dual MIT/GPL";
