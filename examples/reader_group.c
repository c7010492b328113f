/* Example: read a stream with one reader of a reader group.
 *
 *   strata-example-reader_group tcp://127.0.0.1:9090 myscope mystream \
 *           mygroup reader-1
 *
 * Creates the group (from the stream's head) unless it exists, joins it
 * as the named reader and prints every event until 5 s pass without one.
 * Run it several times with different reader names: the readers share
 * the stream's segments, every event is printed by exactly one of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/readergroup.h"

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	if (argc != 6) {
		fprintf(stderr, "usage: %s URL SCOPE STREAM GROUP READER\n",
		        argv[0]);
		return 2;
	}
	struct strata_client_config cfg;
	strata_client_config_default(&cfg);
	const char *urls[] = {argv[1]};
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	struct strata_client *c;
	if (strata_client_new(&cfg, &c, err) != 0) {
		fprintf(stderr, "client: %s\n", err);
		return 1;
	}
	struct strata_stream_cut head = STRATA_STREAM_CUT_INIT;
	snprintf(head.scope, sizeof(head.scope), "%s", argv[2]);
	snprintf(head.stream, sizeof(head.stream), "%s", argv[3]);
	struct strata_reader_group_stream s = {&head, NULL};
	struct strata_reader_group_config rgc;
	strata_reader_group_config_default(&rgc);
	rgc.streams = &s;
	rgc.n_streams = 1;
	int rc = strata_reader_group_create(c, argv[2], argv[4], &rgc, err);
	if (rc != 0 && rc != STRATA_EEXIST) {
		fprintf(stderr, "create group: %s\n", err);
		strata_client_free(c);
		return 1;
	}
	struct strata_reader *r;
	if (strata_reader_new(c, argv[2], argv[4], argv[5], &r, err) != 0) {
		fprintf(stderr, "reader: %s\n", err);
		strata_client_free(c);
		return 1;
	}
	unsigned long n = 0;
	for (;;) {
		struct strata_read ev;
		rc = strata_reader_next(r, 5000, &ev, err);
		if (rc == STRATA_ETRUNCATED) {
			/* Retention dropped data before we read it: said
			 * once, the reader goes on after it. */
			fprintf(stderr, "read: %s\n", err);
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "read: %s\n", err);
			break;
		}
		if (ev.kind == STRATA_READ_EVENT) {
			printf("%s/%s seg %llu @%llu: %.*s\n", ev.scope,
			       ev.stream, (unsigned long long)ev.segment_id,
			       (unsigned long long)ev.offset, (int)ev.len,
			       (const char *)ev.data);
			n++;
		} else if (ev.kind == STRATA_READ_CHECKPOINT) {
			printf("checkpoint %s\n", ev.checkpoint);
		} else {
			break; /* nothing for 5 s, or the end */
		}
	}
	printf("%lu events read\n", n);
	strata_reader_close(r, err);
	strata_client_free(c);
	return 0;
}
