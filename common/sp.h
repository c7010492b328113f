/* NNG's SP wire format over TCP, spoken by Strata's own connections
 * (client/wire.c, and the server side in common/rpc_sp.c) so that NNG
 * peers interoperate: each side first sends the 8-byte SP header
 * 00 'S' 'P' 00 <protocol, 16-bit big-endian> 00 00, then messages of an
 * 8-byte big-endian length, the 4-byte request id with its high bit set
 * (req0's header, echoed by rep0) and the envelope. */
#ifndef COMMON_SP_H
#define COMMON_SP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* SP protocol numbers (NNG: major << 4 | minor). */
#define SP_PROTO_REQ0 0x30u
#define SP_PROTO_REP0 0x31u

#define SP_HDR 12u /* message length (8) + request id (4) */

/* Split tcp://HOST:PORT or tcp://[HOST]:PORT (port 0 only when port0;
 * host 1..hostsz-1 bytes, not checked further). False if it is not one. */
bool sp_url_host_port(const char *url, bool port0, char *host, size_t hostsz,
                      unsigned *port);

/* True if host is a DNS name (RFC 1123 labels, not all digits). */
bool sp_host_is_name(const char *host);

/* What a tcp:// URL names: a numeric address (IPV4, or IPV6 in brackets;
 * *sa and *salen filled), a DNS name (host and *port filled, to look up),
 * or neither. Port 0 only when port0; host gets hostsz bytes. */
enum sp_url_kind { SP_URL_BAD, SP_URL_ADDR, SP_URL_NAME };
enum sp_url_kind sp_url_parse(const char *url, bool port0, char *host,
                              size_t hostsz, unsigned *port,
                              struct sockaddr_storage *sa, socklen_t *salen);

/* sp_url_parse for numeric addresses only: false for anything else. */
bool sp_url_addr(const char *url, bool port0, struct sockaddr_storage *sa,
                 socklen_t *salen);

struct iovec;

/* Write iov[0..n) to the non-blocking socket fd (no SIGPIPE; EINTR
 * retried): bytes written, 0 when the socket is full, -1 (errno set) when
 * it is broken. */
ssize_t sp_sendv(int fd, struct iovec *iov, int n);

uint64_t sp_get_be64(const uint8_t *p);
uint32_t sp_get_be32(const uint8_t *p);
void sp_put_be64(uint8_t *p, uint64_t v);
void sp_put_be32(uint8_t *p, uint32_t v);

/* Parser of what the peer sends: its 8-byte SP header, then frames of an
 * 8-byte big-endian length, a 4-byte request id (high bit set) and the
 * envelope. Pure: fuzzed by tests/fuzz/fuzz_sp_rx.c. */
struct sp_rx {
	size_t max;      /* largest envelope accepted */
	unsigned peer;   /* the protocol the peer must speak (SP_PROTO_*) */
	int state;       /* SP_RX_* in wire.c */
	uint8_t hdr[12]; /* SP header, then length + id */
	size_t have;     /* bytes of hdr, or of the body, received */
	uint32_t id;     /* the frame's request id, high bit cleared */
	void *msg;       /* nng_msg * being filled (the envelope) */
	size_t len;      /* its length */
};

void sp_rx_init(struct sp_rx *rx, size_t max, unsigned peer);
void sp_rx_reset(struct sp_rx *rx); /* frees a partial message */

/* True once the peer's SP header was received and accepted. */
bool sp_rx_ready(const struct sp_rx *rx);

/*
 * Take bytes p[0..n). Returns how many it used; when a frame completed,
 * *msg (an nng_msg *, transferred) and *id are set and it stops there
 * (call again with the rest). -1 with errmsg on a protocol violation (not
 * an SP peer of the expected protocol, a frame over max, an id without its
 * high bit) or when out of memory (*msg NULL either way).
 */
ssize_t sp_rx_feed(struct sp_rx *rx, const uint8_t *p, size_t n, uint32_t *id,
                   void **msg, char *errmsg);

/* While a frame's envelope is being filled: where its next bytes go and
 * how many are missing (0: not in an envelope), to receive straight into
 * it; then sp_rx_filled(n) as sp_rx_feed would. */
size_t sp_rx_room(const struct sp_rx *rx, uint8_t **dst);
bool sp_rx_filled(struct sp_rx *rx, size_t n, uint32_t *id, void **msg);

#endif /* COMMON_SP_H */
