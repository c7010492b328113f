/* NNG's SP wire format over TCP, the part both ends of Strata's own
 * connections share (see sp.h). */
#include "common/sp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <nng/nng.h>

#include "common/errmsg.h"
#include "common/rpc.h"

enum { SP_RX_HELLO, SP_RX_HEAD, SP_RX_BODY };

void sp_rx_init(struct sp_rx *rx, size_t max, unsigned peer)
{
	memset(rx, 0, sizeof(*rx));
	rx->max = max;
	rx->peer = peer;
	rx->state = SP_RX_HELLO;
}

void sp_rx_reset(struct sp_rx *rx)
{
	if (rx->msg != NULL) {
		nng_msg_free(rx->msg);
	}
	sp_rx_init(rx, rx->max, rx->peer);
}

uint64_t sp_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = v << 8 | p[i];
	}
	return v;
}

uint32_t sp_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void sp_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

void sp_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Header bytes complete: check them; 0 or -1 with errmsg. */
static int rx_header_done(struct sp_rx *rx, char *errmsg)
{
	if (rx->state == SP_RX_HELLO) {
		const uint8_t *h = rx->hdr;
		if (h[0] != 0 || h[1] != 'S' || h[2] != 'P' || h[3] != 0 ||
		    h[6] != 0 || h[7] != 0) {
			errmsg_set(errmsg, "not an NNG/SP server (its first "
			                   "bytes are not an SP header)");
			return -1;
		}
		unsigned proto = (unsigned)h[4] << 8 | h[5];
		if (proto != rx->peer) {
			errmsg_set(
			        errmsg,
			        "SP peer speaks protocol 0x%x, not %s (0x%x)",
			        proto,
			        rx->peer == SP_PROTO_REP0 ? "rep0" : "req0",
			        rx->peer);
			return -1;
		}
		rx->state = SP_RX_HEAD;
		rx->have = 0;
		return 0;
	}
	uint64_t flen = sp_get_be64(rx->hdr);
	uint32_t id = sp_get_be32(rx->hdr + 8);
	if (flen < 4 || flen - 4 > rx->max) {
		errmsg_set(errmsg,
		           "frame of %llu bytes (a message holds 4..%zu): "
		           "stream corrupt or a peer of another kind",
		           (unsigned long long)flen, rx->max + 4);
		return -1;
	}
	if ((id & 0x80000000u) == 0) {
		errmsg_set(errmsg, "message without a request id (0x%08x)", id);
		return -1;
	}
	rx->id = id & 0x7fffffffu;
	rx->len = (size_t)(flen - 4);
	nng_msg *m = NULL;
	if (nng_msg_alloc(&m, rx->len) != 0) {
		errmsg_set(errmsg, "out of memory for a message of %zu bytes",
		           rx->len);
		return -1;
	}
	rx->msg = m;
	rx->state = SP_RX_BODY;
	rx->have = 0;
	return 0;
}

ssize_t sp_sendv(int fd, struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	for (;;) {
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w >= 0) {
			return w;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return 0;
		}
		if (errno != EINTR) {
			return -1;
		}
	}
}

bool sp_rx_ready(const struct sp_rx *rx)
{
	return rx->state != SP_RX_HELLO;
}

size_t sp_rx_room(const struct sp_rx *rx, uint8_t **dst)
{
	if (rx->state != SP_RX_BODY) {
		*dst = NULL;
		return 0;
	}
	*dst = (uint8_t *)nng_msg_body(rx->msg) + rx->have;
	return rx->len - rx->have;
}

bool sp_rx_filled(struct sp_rx *rx, size_t n, uint32_t *id, void **msg)
{
	rx->have += n;
	if (rx->have < rx->len) {
		return false;
	}
	*id = rx->id;
	*msg = rx->msg;
	rx->msg = NULL;
	rx->state = SP_RX_HEAD;
	rx->have = 0;
	return true;
}

ssize_t sp_rx_feed(struct sp_rx *rx, const uint8_t *p, size_t n, uint32_t *id,
                   void **msg, char *errmsg)
{
	size_t used = 0;
	*msg = NULL;
	while (used < n) {
		if (rx->state == SP_RX_BODY) {
			uint8_t *dst;
			size_t room = sp_rx_room(rx, &dst);
			size_t k = n - used < room ? n - used : room;
			memcpy(dst, p + used, k);
			used += k;
			if (sp_rx_filled(rx, k, id, msg)) {
				return (ssize_t)used;
			}
			continue;
		}
		size_t want = rx->state == SP_RX_HELLO ? 8 : SP_HDR;
		size_t k = want - rx->have;
		if (k > n - used) {
			k = n - used;
		}
		memcpy(rx->hdr + rx->have, p + used, k);
		rx->have += k;
		used += k;
		if (rx->have < want) {
			break;
		}
		if (rx_header_done(rx, errmsg) != 0) {
			return -1;
		}
		if (rx->state == SP_RX_BODY && rx->len == 0 &&
		    sp_rx_filled(rx, 0, id, msg)) {
			return (ssize_t)used;
		}
	}
	return (ssize_t)used;
}

bool sp_url_host_port(const char *url, bool port0, char *host, size_t hostsz,
                      unsigned *port)
{
	if (url == NULL || strncmp(url, "tcp://", 6) != 0 ||
	    strlen(url) > RPC_MAX_URL_LEN) {
		return false;
	}
	const char *h = url + 6;
	const char *colon;
	size_t hlen;
	if (h[0] == '[') {
		const char *end = strchr(h, ']');
		if (end == NULL || end[1] != ':') {
			return false;
		}
		h++;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL) {
			return false;
		}
		hlen = (size_t)(colon - h);
	}
	if (hlen == 0 || hlen >= hostsz) {
		return false;
	}
	char *e;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &e, 10);
	if (colon[1] < '0' || colon[1] > '9' || *e != '\0' || errno != 0 ||
	    (p == 0 && !port0) || p > 65535) {
		return false;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (unsigned)p;
	return true;
}

bool sp_host_is_name(const char *host)
{
	size_t len = strlen(host);
	if (len > 0 && host[len - 1] == '.') {
		len--; /* fully qualified */
	}
	if (len == 0 || len > 253) {
		return false;
	}
	size_t label = 0;
	bool alpha = false;
	for (size_t i = 0; i < len; i++) {
		char ch = host[i];
		if (ch == '.') {
			if (label == 0 || host[i - 1] == '-') {
				return false;
			}
			label = 0;
			continue;
		}
		bool letter =
		        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
		bool digit = ch >= '0' && ch <= '9';
		if ((!letter && !digit && (ch != '-' || label == 0)) ||
		    ++label > 63) {
			return false;
		}
		alpha = alpha || !digit;
	}
	/* All digits and dots is a numeric address, not a name. */
	return label > 0 && host[len - 1] != '-' && alpha;
}

enum sp_url_kind sp_url_parse(const char *url, bool port0, char *host,
                              size_t hostsz, unsigned *port,
                              struct sockaddr_storage *sa, socklen_t *salen)
{
	if (!sp_url_host_port(url, port0, host, hostsz, port)) {
		return SP_URL_BAD;
	}
	memset(sa, 0, sizeof(*sa));
	if (url[6] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)*port);
		*salen = sizeof(*a);
		return inet_pton(AF_INET6, host, &a->sin6_addr) == 1
		               ? SP_URL_ADDR
		               : SP_URL_BAD;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)sa;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)*port);
	*salen = sizeof(*a);
	if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
		return SP_URL_ADDR;
	}
	return sp_host_is_name(host) ? SP_URL_NAME : SP_URL_BAD;
}

bool sp_url_addr(const char *url, bool port0, struct sockaddr_storage *sa,
                 socklen_t *salen)
{
	char host[RPC_MAX_URL_LEN + 1];
	unsigned port;
	return sp_url_parse(url, port0, host, sizeof(host), &port, sa, salen) ==
	       SP_URL_ADDR;
}
