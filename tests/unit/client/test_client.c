/* Unit tests for client/client.c and client/manager.c: configuration,
 * names, and a controller that does not answer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/segment.h"
#include "strata/writer.h"

/* A 127.0.0.1 port nothing listens on (bound, then closed). */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t l = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Missing or malformed controller URLs and bad timeouts are refused. */
static void test_client_new_rejects_bad_config(void **state)
{
	(void)state;
	struct strata_client_config cfg;
	struct strata_client *c = NULL;
	char err[STRATA_ERRMSG_SIZE];
	strata_client_config_default(&cfg);
	assert_int_equal(strata_client_new(&cfg, &c, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "controller"));
	const char *bad[1] = {"http://x:1"};
	cfg.controller_urls = bad;
	cfg.n_controller_urls = 1;
	assert_int_equal(strata_client_new(&cfg, &c, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "http://x:1"));
	const char *good[1] = {"tcp://127.0.0.1:9"};
	cfg.controller_urls = good;
	cfg.request_timeout_ms = 0;
	assert_int_equal(strata_client_new(&cfg, &c, err), STRATA_EINVAL);
	assert_null(c);
}

/* With no controller listening, calls fail with STRATA_EUNAVAIL and a
 * message naming the URL, within the operation timeout. */
static void test_client_controller_unreachable(void **state)
{
	(void)state;
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", dead_port());
	const char *urls[1] = {url};
	struct strata_client_config cfg;
	struct strata_client *c = NULL;
	char err[STRATA_ERRMSG_SIZE];
	strata_client_config_default(&cfg);
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	cfg.connect_timeout_ms = 100;
	cfg.request_timeout_ms = 300;
	cfg.retries = 0;
	cfg.operation_timeout_ms = 800;
	assert_int_equal(strata_client_new(&cfg, &c, err), 0);
	int rc = strata_stream_create(c, "s", "t", NULL, err);
	assert_int_equal(rc, STRATA_EUNAVAIL);
	assert_non_null(strstr(err, url));
	assert_non_null(strstr(err, "unreachable"));
	struct strata_names *names = NULL;
	assert_int_equal(strata_scope_list(c, &names, err), STRATA_EUNAVAIL);
	assert_non_null(strstr(err, "strata-controller"));
	struct strata_writer *w = NULL;
	assert_int_equal(strata_writer_new(c, "s", "t", NULL, &w, err),
	                 STRATA_EUNAVAIL);
	struct strata_segment_stat st;
	assert_int_equal(strata_segment_get_stat(c, "s/t/0.#epoch.0", &st, err),
	                 STRATA_EUNAVAIL);
	assert_non_null(strstr(err, "controller unreachable"));
	strata_client_free(c);
}

/* Invalid names are refused locally with STRATA_EBADNAME. */
static void test_client_names_checked(void **state)
{
	(void)state;
	const char *urls[1] = {"tcp://127.0.0.1:9"};
	struct strata_client_config cfg;
	struct strata_client *c = NULL;
	char err[STRATA_ERRMSG_SIZE];
	strata_client_config_default(&cfg);
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	assert_int_equal(strata_client_new(&cfg, &c, err), 0);
	assert_int_equal(strata_scope_create(c, "", err), STRATA_EBADNAME);
	assert_int_equal(strata_stream_create(c, "ok", "a b", NULL, err),
	                 STRATA_EBADNAME);
	assert_non_null(strstr(err, "a b"));
	assert_int_equal(strata_stream_seal(c, "..", "x", err),
	                 STRATA_EBADNAME);
	struct strata_segment_stat st;
	assert_int_equal(strata_segment_get_stat(c, "not-a-segment", &st, err),
	                 STRATA_EBADNAME);
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	strcpy(cut.scope, "s");
	strcpy(cut.stream, "t");
	assert_int_equal(strata_stream_truncate(c, &cut, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "empty"));
	strata_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_client_new_rejects_bad_config),
	        cmocka_unit_test(test_client_controller_unreachable),
	        cmocka_unit_test(test_client_names_checked),
	};
	return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
