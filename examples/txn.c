/* Example: write a batch of events as one transaction with libstrata.
 *
 *   strata-example-txn tcp://127.0.0.1:9090 myscope mystream 1000
 *
 * Creates the scope and stream if needed, writes N events keyed by
 * "user-<i % 10>" in one transaction and commits it: readers see all N at
 * once, or (on any error: the transaction is aborted) none of them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/txn.h"

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s CONTROLLER_URL SCOPE STREAM N\n",
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
	rc = strata_stream_create(c, scope, stream, &scfg, err);
	if (rc != 0 && rc != STRATA_EEXIST) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	struct strata_txn *t;
	rc = strata_txn_begin(c, scope, stream, NULL, &t, err);
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	for (unsigned long i = 0; i < n && rc == 0; i++) {
		char key[32];
		char ev[64];
		snprintf(key, sizeof(key), "user-%lu", i % 10);
		int len = snprintf(ev, sizeof(ev), "event %lu", i);
		rc = strata_txn_write(t, key, strlen(key), ev, (size_t)len,
		                      err);
	}
	if (rc == 0) {
		rc = strata_txn_commit(t, err); /* aborts on a failed event */
	} else {
		char ignored[STRATA_ERRMSG_SIZE];
		strata_txn_abort(t, ignored);
	}
	if (rc != 0) {
		fprintf(stderr, "transaction %" PRIu64 ": %s\n",
		        strata_txn_id(t), err);
	} else {
		printf("transaction %" PRIu64 " committed: %lu events\n",
		       strata_txn_id(t), n);
	}
	strata_txn_free(t);
out:
	strata_client_free(c);
	return rc == 0 ? 0 : 1;
}
