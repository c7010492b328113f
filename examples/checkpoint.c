/* Example: take a checkpoint of a reader group, or reset the group to it.
 *
 *   strata-example-checkpoint tcp://127.0.0.1:9090 myscope mygroup take cp1
 *   strata-example-checkpoint tcp://127.0.0.1:9090 myscope mygroup reset cp1
 *
 * "take" waits (up to 30 s) until every online reader has passed the
 * checkpoint (their strata_reader_next returns it) and prints its stream
 * cuts; "reset" rewrites the group so that new readers resume exactly at
 * the positions of that (completed) checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/readergroup.h"

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	if (argc != 6 ||
	    (strcmp(argv[4], "take") != 0 && strcmp(argv[4], "reset") != 0)) {
		fprintf(stderr, "usage: %s URL SCOPE GROUP take|reset NAME\n",
		        argv[0]);
		return 2;
	}
	struct strata_client_config cfg;
	strata_client_config_default(&cfg);
	const char *urls[] = {argv[1]};
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	struct strata_client *c;
	struct strata_reader_group *rg;
	if (strata_client_new(&cfg, &c, err) != 0) {
		fprintf(stderr, "client: %s\n", err);
		return 1;
	}
	if (strata_reader_group_open(c, argv[2], argv[3], &rg, err) != 0) {
		fprintf(stderr, "open group: %s\n", err);
		strata_client_free(c);
		return 1;
	}
	struct strata_checkpoint *cp = NULL;
	int rc = strata_reader_group_initiate_checkpoint(rg, argv[5], 30000,
	                                                 &cp, err);
	if (strcmp(argv[4], "reset") == 0 && rc == STRATA_EEXIST) {
		/* Taken before: reset uses the group's own copy by name. */
		struct strata_checkpoint named = {0};
		snprintf(named.name, sizeof(named.name), "%s", argv[5]);
		rc = strata_reader_group_reset(rg, &named, err);
		if (rc == 0) {
			printf("group %s reset to checkpoint %s\n", argv[3],
			       argv[5]);
		}
	} else if (rc == 0) {
		for (size_t i = 0; i < cp->n; i++) {
			char text[4096];
			strata_stream_cut_format(&cp->cuts[i], text,
			                         sizeof(text));
			printf("%s\n", text);
		}
		strata_checkpoint_free(cp);
	}
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", argv[4], err);
	}
	strata_reader_group_close(rg);
	strata_client_free(c);
	return rc == 0 ? 0 : 1;
}
