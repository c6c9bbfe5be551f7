// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
//
// Flotilla node-port translation at TC, for externalTrafficPolicy Local.
//
// Traffic from outside the node to a node port (or a LoadBalancer port) of
// a Local service is translated on the node's interface instead of being
// relayed by the agent, so the backend sees the client's own address:
//
//   ingress: client -> node:nodePort  becomes  client -> backend:port
//   egress:  backend:port -> client   becomes  node:nodePort -> client
//
// Backends of a Local service are on this node (host networking: a pod
// endpoint is a node address and a host port), so the rewritten packet is
// delivered locally and its reply leaves through the same interface.
//
// A flow is pinned to its backend in two LRU maps (ct_in for the forward
// direction, ct_out for the reply) when its first packet (TCP SYN, or any
// UDP datagram) arrives. A flow the program does not translate (no entry,
// no backend admitting the client) passes untouched to the agent's
// listener on the node port, which applies the same rules and refuses it.
//
// NetworkPolicy: a backend whose pod is ingress-isolated has entries in
// pol_lpm, a longest-prefix table of client addresses with allow/deny
// verdicts (package policy, IngressPrefixes); a backend without entries
// admits everyone.
//
// Only uapi headers, no CO-RE: loads on kernels without BTF. Ethernet
// devices only (the agent does not attach to others).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_BACKENDS 32
/* A SYN for a flow pinned less than this long ago is a retransmission and
 * keeps its backend; an older one is a new connection reusing the tuple. */
#define SYN_REUSE_NS (10ull * 1000000000ull)

struct np_key {
	__be32 addr; /* node (or LoadBalancer) address */
	__be16 port; /* node port */
	__u8 proto;
	__u8 pad;
};

struct backend {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* One update replaces the whole value, so a program reads either the old
 * backend list or the new one, never a mix. */
struct np_val {
	__u32 count;
	__u32 pad;
	struct backend be[MAX_BACKENDS];
};

/* A packet's tuple as it appears on the wire. */
struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct ct_val {
	__be32 addr; /* ct_in: backend; ct_out: original destination */
	__be16 port;
	__u16 pad;
	__u64 created_ns;
};

/* LPM key: backend, protocol, then the client prefix. prefixlen counts
 * from be_addr: 64 + the client prefix length. */
struct pol_key {
	__u32 prefixlen;
	__be32 be_addr;
	__be16 be_port;
	__u8 proto;
	__u8 pad;
	__be32 client;
};

#define POL_ALLOW 1u

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct np_key);
	__type(value, struct np_val);
} np_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct ct_key);
	__type(value, struct ct_val);
} np_ct_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct ct_key);
	__type(value, struct ct_val);
} np_ct_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct pol_key);
	__type(value, __u32);
} np_pol_lpm SEC(".maps");

/* pkt is a parsed IPv4 TCP/UDP packet. */
struct pkt {
	struct ct_key t;
	__u32 l4off;
	__u8 syn_only; /* TCP SYN without ACK */
};

static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return 0;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip) || (ip->frag_off & bpf_htons(0x3fff)))
		return 0; /* bad header, or a fragment: ports are not there */
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	p->l4off = sizeof(*eth) + ihl;
	/* Source and destination ports lead both TCP and UDP headers; byte
	 * 13 of a TCP header holds its flags. */
	__u8 *l4 = data + p->l4off;
	if ((void *)(l4 + 8) > end) /* a UDP header; TCP's flags need more */
		return 0;
	p->t.saddr = ip->saddr;
	p->t.daddr = ip->daddr;
	p->t.sport = *(__be16 *)l4;
	p->t.dport = *(__be16 *)(l4 + 2);
	p->t.proto = ip->protocol;
	if (ip->protocol == IPPROTO_TCP) {
		if ((void *)(l4 + 14) > end)
			return 0;
		p->syn_only = (l4[13] & 0x12) == 0x02; /* SYN without ACK */
	}
	return 1;
}

/* rewrite replaces the source (src=1) or destination address and port,
 * fixing the IP and L4 checksums. */
static __always_inline int rewrite(struct __sk_buff *skb, struct pkt *p, int src,
				   __be32 old_ip, __be32 new_ip, __be16 old_port, __be16 new_port)
{
	__u32 csum_off = p->l4off + (p->t.proto == IPPROTO_TCP ? 16 : 6);
	__u32 ip_off = sizeof(struct ethhdr) +
		       (src ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
	__u32 port_off = p->l4off + (src ? 0 : 2);
	/* A UDP checksum of 0 means "none" and must stay 0. */
	__u64 mangled = p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (old_ip != new_ip) {
		if (bpf_l4_csum_replace(skb, csum_off, old_ip, new_ip,
					BPF_F_PSEUDO_HDR | mangled | sizeof(new_ip)))
			return -1;
		if (bpf_l3_csum_replace(skb, sizeof(struct ethhdr) + offsetof(struct iphdr, check),
					old_ip, new_ip, sizeof(new_ip)))
			return -1;
		if (bpf_skb_store_bytes(skb, ip_off, &new_ip, sizeof(new_ip), 0))
			return -1;
	}
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, mangled | sizeof(new_port)))
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
			return -1;
	}
	return 0;
}

static __always_inline int admits(struct backend *be, __u8 proto, __be32 client)
{
	struct pol_key k = {
		.prefixlen = 64 + 32,
		.be_addr = be->addr,
		.be_port = be->port,
		.proto = proto,
		.client = client,
	};
	__u32 *v = bpf_map_lookup_elem(&np_pol_lpm, &k);

	return !v || *v == POL_ALLOW;
}

/* place chooses a backend for a new flow: a random start, then the first
 * backend (in slot order) whose policy admits the client. */
static __always_inline int place(struct pkt *p, struct backend *out)
{
	struct np_key nk = {.addr = p->t.daddr, .port = p->t.dport, .proto = p->t.proto};
	struct np_val *v = bpf_map_lookup_elem(&np_services, &nk);
	__u32 count, start, i;

	if (!v)
		return 0;
	count = v->count;
	if (count == 0 || count > MAX_BACKENDS)
		return 0;
	start = bpf_get_prandom_u32() % count;
	for (i = 0; i < MAX_BACKENDS; i++) {
		__u32 idx;

		if (i >= count)
			break;
		idx = (start + i) % count;
		/* Hide what clang knows of idx so the bounds check stays: the
		 * verifier cannot follow the modulo. */
		asm volatile("" : "+r"(idx));
		if (idx >= MAX_BACKENDS)
			break;
		if (admits(&v->be[idx], p->t.proto, p->t.saddr)) {
			*out = v->be[idx];
			return 1;
		}
	}
	return 0;
}

/* reply_key is the tuple of the replies to p's flow when they come from
 * addr:port (the backend it was sent to). */
static __always_inline struct ct_key reply_key(struct pkt *p, __be32 addr, __be16 port)
{
	struct ct_key rk = {
		.saddr = addr,
		.daddr = p->t.saddr,
		.sport = port,
		.dport = p->t.sport,
		.proto = p->t.proto,
	};
	return rk;
}

/* forget_reverse drops a reply mapping left by an earlier translated flow
 * whose reply tuple a new, untranslated flow now reuses (a client that
 * dialled the node port, then the backend's own port from the same source
 * port): its replies must not be rewritten. */
static __always_inline void forget_reverse(struct pkt *p)
{
	struct ct_key rk = reply_key(p, p->t.daddr, p->t.dport);

	if (bpf_map_lookup_elem(&np_ct_out, &rk))
		bpf_map_delete_elem(&np_ct_out, &rk);
}

/* keep_reverse writes the reply mapping of a translated flow to backend
 * be (always when force, else only if it is missing). */
static __always_inline int keep_reverse(struct pkt *p, struct backend *be, __u64 now, int force)
{
	struct ct_key rk = reply_key(p, be->addr, be->port);
	struct ct_val out = {.addr = p->t.daddr, .port = p->t.dport, .created_ns = now};

	if (!force && bpf_map_lookup_elem(&np_ct_out, &rk))
		return 0;
	return bpf_map_update_elem(&np_ct_out, &rk, &out, BPF_ANY);
}

SEC("tc")
int flotilla_np_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};
	struct ct_val *cv;
	struct backend be;
	__u64 now;

	if (!parse(skb, &p))
		return TC_ACT_OK;
	cv = bpf_map_lookup_elem(&np_ct_in, &p.t);
	now = bpf_ktime_get_ns();
	if (cv && (!p.syn_only || now - cv->created_ns < SYN_REUSE_NS)) {
		be.addr = cv->addr;
		be.port = cv->port;
		/* forget_reverse may have dropped the reply mapping while the
		 * tuple served a direct flow: a flow's start restores it. */
		if ((p.syn_only || p.t.proto == IPPROTO_UDP) && keep_reverse(&p, &be, now, 0))
			return TC_ACT_OK;
	} else {
		if (p.t.proto == IPPROTO_TCP && !p.syn_only)
			return TC_ACT_OK; /* mid-flow and unknown: not ours */
		if (!place(&p, &be)) {
			forget_reverse(&p);
			return TC_ACT_OK;
		}
		struct ct_val in = {.addr = be.addr, .port = be.port, .created_ns = now};
		if (keep_reverse(&p, &be, now, 1) ||
		    bpf_map_update_elem(&np_ct_in, &p.t, &in, BPF_ANY))
			return TC_ACT_OK;
	}
	if (rewrite(skb, &p, 0, p.t.daddr, be.addr, p.t.dport, be.port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int flotilla_np_egress(struct __sk_buff *skb)
{
	struct pkt p = {};
	struct ct_val *cv;

	if (!parse(skb, &p))
		return TC_ACT_OK;
	cv = bpf_map_lookup_elem(&np_ct_out, &p.t);
	if (!cv)
		return TC_ACT_OK;
	if (rewrite(skb, &p, 1, p.t.saddr, cv->addr, p.t.sport, cv->port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual MIT/GPL";
