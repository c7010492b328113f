/* Unit tests for common/sp.c: the SP wire-format parser (the socket side
 * is tested with real servers in test_client_wire and test_rpc). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>
#include <nng/nng.h>

#include "common/sp.h"
#include "strata/error.h"

/* Feed the parser one byte at a time, then all at once. */
static void test_sp_rx_frames(void **state)
{
	(void)state;
	uint8_t in[8 + 2 * 12 + 5] = {0, 'S', 'P', 0, 0, SP_PROTO_REP0, 0, 0};
	uint8_t *p = in + 8;
	/* frame 1: id 7, body "hello"; frame 2: id 9, empty body */
	const uint8_t f1[] = {0, 0, 0, 0, 0, 0, 0, 9, 0x80, 0, 0, 7};
	memcpy(p, f1, 12);
	memcpy(p + 12, "hello", 5);
	const uint8_t f2[] = {0, 0, 0, 0, 0, 0, 0, 4, 0x80, 0, 0, 9};
	memcpy(p + 17, f2, 12);
	for (int whole = 0; whole < 2; whole++) {
		struct sp_rx rx;
		sp_rx_init(&rx, 1024, SP_PROTO_REP0);
		uint32_t ids[2];
		size_t lens[2];
		int got = 0;
		size_t off = 0;
		while (off < sizeof(in)) {
			size_t n = whole ? sizeof(in) - off : 1;
			uint32_t id;
			void *msg;
			char err[STRATA_ERRMSG_SIZE];
			ssize_t k =
			        sp_rx_feed(&rx, in + off, n, &id, &msg, err);
			assert_true(k > 0);
			off += (size_t)k;
			if (msg != NULL) {
				assert_true(got < 2);
				ids[got] = id;
				lens[got] = nng_msg_len(msg);
				if (got == 0) {
					assert_memory_equal(nng_msg_body(msg),
					                    "hello", 5);
				}
				nng_msg_free(msg);
				got++;
			}
		}
		assert_int_equal(got, 2);
		assert_int_equal(ids[0], 7);
		assert_int_equal(lens[0], 5);
		assert_int_equal(ids[1], 9);
		assert_int_equal(lens[1], 0);
		sp_rx_reset(&rx);
	}
}

static void rx_expect_error(const uint8_t *in, size_t n, const char *what)
{
	struct sp_rx rx;
	sp_rx_init(&rx, 1024, SP_PROTO_REP0);
	uint32_t id;
	void *msg;
	char err[STRATA_ERRMSG_SIZE] = "";
	ssize_t k = sp_rx_feed(&rx, in, n, &id, &msg, err);
	assert_int_equal(k, -1);
	assert_null(msg);
	if (strstr(err, what) == NULL) {
		fail_msg("error '%s' does not say '%s'", err, what);
	}
	sp_rx_reset(&rx);
}

static void test_sp_rx_errors(void **state)
{
	(void)state;
	const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n";
	rx_expect_error(http, sizeof(http) - 1, "not an NNG/SP server");
	const uint8_t req[] = {0, 'S', 'P', 0, 0, SP_PROTO_REQ0, 0, 0};
	rx_expect_error(req, sizeof(req), "not rep0");
	uint8_t big[20] = {
	        0,    'S', 'P', 0, 0, SP_PROTO_REP0, 0,    0, 0,
	        0,    0,   0,   0, 0, 0x04,          0x05, /* 1029 > 1024+4 */
	        0x80, 0,   0,   1};
	rx_expect_error(big, sizeof(big), "frame of 1029 bytes");
	uint8_t huge[20] = {0,    'S',  'P',  0,    0,    SP_PROTO_REP0,
	                    0,    0,    0xff, 0xff, 0xff, 0xff,
	                    0xff, 0xff, 0xff, 0xff, 0x80, 0,
	                    0,    1};
	rx_expect_error(huge, sizeof(huge), "frame of");
	uint8_t shortf[20] = {0, 'S', 'P', 0, 0, SP_PROTO_REP0, 0, 0, 0, 0, 0,
	                      0, 0,   0,   0, 3, 0x80,          0, 0, 1};
	rx_expect_error(shortf, sizeof(shortf), "frame of 3 bytes");
	uint8_t noid[20] = {0, 'S', 'P', 0, 0, SP_PROTO_REP0, 0, 0, 0, 0, 0,
	                    0, 0,   0,   0, 4, 0x00,          0, 0, 1};
	rx_expect_error(noid, sizeof(noid), "without a request id");
}

static void test_sp_be(void **state)
{
	(void)state;
	uint8_t b[8];
	sp_put_be64(b, 0x0102030405060708ull);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[7], 8);
	assert_true(sp_get_be64(b) == 0x0102030405060708ull);
	sp_put_be32(b, 0x80000007u);
	assert_int_equal(b[0], 0x80);
	assert_int_equal(sp_get_be32(b), 0x80000007u);
}

/* A rep0 server's parser wants req0 peers. */
static void test_sp_rx_req0_peer(void **state)
{
	(void)state;
	struct sp_rx rx;
	sp_rx_init(&rx, 64, SP_PROTO_REQ0);
	const uint8_t req[] = {0, 'S', 'P', 0, 0, SP_PROTO_REQ0, 0, 0};
	uint32_t id;
	void *msg;
	char err[STRATA_ERRMSG_SIZE];
	assert_false(sp_rx_ready(&rx));
	assert_int_equal(sp_rx_feed(&rx, req, sizeof(req), &id, &msg, err), 8);
	assert_true(sp_rx_ready(&rx));
	sp_rx_reset(&rx);
}

/* sp_sendv: bytes, 0 when full, -1 when the peer is gone (no SIGPIPE). */
static void test_sp_sendv(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(
	        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	static uint8_t block[65536];
	struct iovec iov[2] = {{block, 10}, {block, 20}};
	assert_int_equal(sp_sendv(sv[0], iov, 2), 30);
	struct iovec big = {block, sizeof(block)};
	ssize_t w = 1;
	for (int i = 0; i < 1000 && w > 0; i++) {
		w = sp_sendv(sv[0], &big, 1);
	}
	assert_int_equal(w, 0); /* full */
	close(sv[1]);
	assert_int_equal(sp_sendv(sv[0], iov, 2), -1);
	close(sv[0]);
}

/* What sp_url_parse makes of url (port 0 refused). */
struct url_parsed {
	char name[64];
	unsigned port;
	struct sockaddr_storage sa;
	socklen_t len;
};

static enum sp_url_kind url_kind(const char *url, struct url_parsed *u)
{
	return sp_url_parse(url, false, u->name, sizeof(u->name), &u->port,
	                    &u->sa, &u->len);
}

/* URLs: numeric addresses parse into a sockaddr; a host and port split
 * for any tcp:// URL; DNS names are told from numbers and junk. */
static void test_sp_urls(void **state)
{
	(void)state;
	struct sockaddr_storage sa;
	socklen_t len;
	assert_true(sp_url_addr("tcp://127.0.0.1:9090", false, &sa, &len));
	assert_int_equal(sa.ss_family, AF_INET);
	assert_true(sp_url_addr("tcp://[::1]:9090", false, &sa, &len));
	assert_int_equal(sa.ss_family, AF_INET6);
	assert_true(sp_url_addr("tcp://0.0.0.0:0", true, &sa, &len));
	assert_false(sp_url_addr("tcp://0.0.0.0:0", false, &sa, &len));
	assert_false(sp_url_addr("tcp://::1:9090", false, &sa, &len));
	assert_false(sp_url_addr("tcp://[127.0.0.1]:9090", false, &sa, &len));
	assert_false(sp_url_addr("tcp://localhost:9090", false, &sa, &len));
	assert_false(sp_url_addr("tcp://1.2.3.4:65536", false, &sa, &len));

	/* One parse tells numbers, names and neither apart. */
	struct url_parsed u;
	assert_int_equal(url_kind("tcp://10.0.0.7:80", &u), SP_URL_ADDR);
	assert_int_equal(u.sa.ss_family, AF_INET);
	assert_int_equal(url_kind("tcp://[::1]:80", &u), SP_URL_ADDR);
	assert_int_equal(u.sa.ss_family, AF_INET6);
	assert_int_equal(url_kind("tcp://store-0.store:12345", &u),
	                 SP_URL_NAME);
	assert_string_equal(u.name, "store-0.store");
	assert_int_equal(u.port, 12345);
	assert_int_equal(url_kind("tcp://[store]:1", &u), SP_URL_BAD);
	assert_int_equal(url_kind("tcp://10.0.0.999:1", &u), SP_URL_BAD);
	assert_int_equal(url_kind("tcp://a_b:1", &u), SP_URL_BAD);

	char host[16];
	unsigned port;
	assert_true(sp_url_host_port("tcp://store-1:12345", false, host,
	                             sizeof(host), &port));
	assert_string_equal(host, "store-1");
	assert_int_equal(port, 12345);
	assert_true(sp_url_host_port("tcp://[fe80::1]:7", false, host,
	                             sizeof(host), &port));
	assert_string_equal(host, "fe80::1");
	assert_false(sp_url_host_port("tcp://a-very-long-host-name:1", false,
	                              host, sizeof(host), &port)); /* room */
	assert_false(
	        sp_url_host_port("tcp://h:", false, host, sizeof(host), &port));
	assert_false(sp_url_host_port("tcp://h:+1", false, host, sizeof(host),
	                              &port));
	assert_false(sp_url_host_port("ipc:///x:1", false, host, sizeof(host),
	                              &port));
	assert_false(sp_url_host_port(NULL, false, host, sizeof(host), &port));

	assert_true(sp_host_is_name("localhost"));
	assert_true(sp_host_is_name("store1.store.default.svc.cluster.local"));
	assert_true(sp_host_is_name("store1."));
	assert_true(sp_host_is_name("1e100.net"));
	assert_true(sp_host_is_name("123-456"));
	assert_false(sp_host_is_name(""));
	assert_false(sp_host_is_name("."));
	assert_false(sp_host_is_name("10.0.0.1"));
	assert_false(sp_host_is_name("a..b"));
	assert_false(sp_host_is_name("-a"));
	assert_false(sp_host_is_name("a-"));
	assert_false(sp_host_is_name("a-.b"));
	assert_false(sp_host_is_name("a_b"));
	assert_false(sp_host_is_name("a b"));
	assert_false(sp_host_is_name("::1"));
	char label[70];
	memset(label, 'a', 64);
	label[64] = '\0';
	assert_false(sp_host_is_name(label)); /* a label of 64 */
	label[63] = '\0';
	assert_true(sp_host_is_name(label));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sp_be),
	        cmocka_unit_test(test_sp_urls),
	        cmocka_unit_test(test_sp_sendv),
	        cmocka_unit_test(test_sp_rx_frames),
	        cmocka_unit_test(test_sp_rx_errors),
	        cmocka_unit_test(test_sp_rx_req0_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
