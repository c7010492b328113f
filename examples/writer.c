/* Example: write events to a Strata stream with libstrata.
 *
 *   strata-example-writer tcp://127.0.0.1:9090 myscope mystream 1000 [zstd]
 *
 * Creates the scope and stream if needed, writes N events keyed by
 * "user-<i % 10>" asynchronously (completion callbacks count them), then
 * flushes and prints how many were acknowledged. A fifth argument names a
 * codec plugin (zstd, lz4, gzip) to compress each event with; readers
 * decode without being told. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/writer.h"

static atomic_ulong acked;
static atomic_ulong failed;

/* Runs on libstrata's I/O thread: count, never block. */
static void on_written(void *arg, int code, const char *errmsg)
{
	(void)arg;
	if (code == 0) {
		atomic_fetch_add(&acked, 1);
	} else if (atomic_fetch_add(&failed, 1) == 0) {
		fprintf(stderr, "write failed: %s: %s\n",
		        strata_error_name(code), errmsg);
	}
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr,
		        "usage: %s CONTROLLER_URL SCOPE STREAM N [CODEC]\n",
		        argv[0]);
		return 2;
	}
	const char *urls[1] = {argv[1]};
	const char *scope = argv[2];
	const char *stream = argv[3];
	unsigned long n = strtoul(argv[4], NULL, 10);
	char err[STRATA_ERRMSG_SIZE];
	struct strata_client_config ccfg;
	struct strata_client *c;
	strata_client_config_default(&ccfg);
	ccfg.controller_urls = urls;
	ccfg.n_controller_urls = 1;
	int rc = strata_client_new(&ccfg, &c, err);
	if (rc != 0) {
		fprintf(stderr, "client: %s\n", err);
		return 1;
	}
	rc = strata_scope_create(c, scope, err);
	if (rc != 0 && rc != STRATA_EEXIST) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	struct strata_stream_config scfg;
	strata_stream_config_default(&scfg);
	scfg.min_segments = 4;
	rc = strata_stream_create(c, scope, stream, &scfg, err);
	if (rc != 0 && rc != STRATA_EEXIST) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	struct strata_writer_config wcfg;
	struct strata_writer *w;
	strata_writer_config_default(&wcfg);
	wcfg.linger_ms = 2; /* trade 2 ms of latency for bigger batches */
	wcfg.codec = argc == 6 ? argv[5] : NULL;
	rc = strata_writer_new(c, scope, stream, &wcfg, &w, err);
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	for (unsigned long i = 0; i < n; i++) {
		char key[32];
		char ev[64];
		snprintf(key, sizeof(key), "user-%lu", i % 10);
		int len = snprintf(ev, sizeof(ev), "event %lu", i);
		rc = strata_writer_write(w, key, strlen(key), ev, (size_t)len,
		                         on_written, NULL, err);
		if (rc != 0) {
			fprintf(stderr, "%s\n", err);
			break;
		}
	}
	/* close = flush (wait for every acknowledgement) + free. */
	int crc = strata_writer_close(w, err);
	if (crc != 0) {
		fprintf(stderr, "flush: %s\n", err);
		rc = crc;
	}
	printf("%lu events acknowledged, %lu failed\n", atomic_load(&acked),
	       atomic_load(&failed));
out:
	strata_client_free(c);
	return rc == 0 ? 0 : 1;
}
